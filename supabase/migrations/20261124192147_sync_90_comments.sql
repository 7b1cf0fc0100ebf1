-- Compiled by `wingtel db sync` from the definitions in sql/. Edit those files, not this one.

-- >>> sql/90_comments/internal_functions.sql (sha256 2c938abb6a4111fb0856271a0dee2ee066c703744ebe07c90f1973fa45962a97)
-- Comments on internal functions (analysts and the schema reference read them).
comment on function audit.chain_step(bytea, bytea, bytea) is 'Step of the audit.chain aggregate: sha256(previous link, or the seed, || content hash).';
comment on function audit.forbid_change() is 'Trigger: refuses UPDATE, DELETE and TRUNCATE on append-only audit tables.';
comment on function audit.genesis_hash(uuid) is 'First link of an organization''s audit chain: sha256(''wingtel-audit:'' || organization_id).';
comment on function private.actor_name() is 'The service or user name set in wingtel.actor for this transaction, if any.';
comment on function private.add_add_on_line(uuid, uuid, uuid) is 'Adds an add-on to a line (shared by add_add_on and self_service_add_add_on).';
comment on function private.carrier_payload(public.subscribers, jsonb) is 'The identifiers a carrier adapter needs for a line: MDN, ICCID, IMEI, wholesale plan code.';
comment on function private.change_plan_line(uuid, uuid, uuid) is 'Plan change of a line: upgrade now, downgrade at the next billing day (shared by change_plan and self_service_change_plan).';
comment on function private.check_carrier_limits(public.subscribers, public.carrier_command_kind) is 'Refuses a carrier command past the carrier''s limits (actions per day, plan changes per month, plan change while suspended).';
comment on function private.check_organization() is 'Trigger: an organization''s time zone must be a known IANA zone.';
comment on function private.customer_device_ids() is 'Devices in use on the lines of the caller''s customer accounts.';
comment on function private.customer_line(uuid, text) is 'A line of the calling customer''s account, if the organization allows the self-service action; raises 42501 otherwise.';
comment on function private.customer_sim_ids() is 'SIMs in use on the lines of the caller''s customer accounts.';
comment on function private.end_subscriptions(uuid, uuid, timestamptz) is 'Ends a line''s plans at a moment: closes the running one, removes later ones.';
comment on function private.enqueue_command(public.subscribers, public.carrier_command_kind, jsonb, jsonb) is 'Checks the carrier''s limits and queues a carrier command in the outbox (notifies wingtel_carrier_commands).';
comment on function private.lock_line(uuid, uuid) is 'Locks a line for the rest of the transaction (FOR UPDATE); raises P0002 when it does not exist.';
comment on function private.log_event(public.subscribers, text, text, jsonb, uuid) is 'Appends to a line''s lifecycle log with the current actor.';
comment on function private.require_line_status(public.subscribers, public.line_status[], text) is 'Raises P0001 unless the line is in one of the allowed states and has no open carrier command.';
comment on function private.restore_line(uuid, uuid) is 'Restores a suspended line (shared by the staff function).';
comment on function private.set_sim_state(uuid, uuid, public.sim_state) is 'Sets a SIM''s inventory state.';
comment on function private.snapshot(public.subscribers, jsonb) is 'The state to restore if the carrier refuses a command: line columns, SIM states and extras.';
comment on function private.suspend_line(uuid, uuid, public.suspend_reason) is 'Suspends an active line (shared by suspend_subscriber and self_service_report_lost).';
comment on function private.touch_updated_at() is 'Trigger: sets updated_at to now().';
comment on function private.validate_account() is 'Trigger: account email, contact phone, state and billing day, with plain messages.';
comment on function private.validate_device() is 'Trigger: IMEI check digit, with a plain message.';
comment on function private.validate_port_request() is 'Trigger: the ported number must be valid E.164.';
comment on function private.validate_sim_card() is 'Trigger: ICCID check digit, eSIM EID, IMSI, with plain messages.';
comment on function private.validate_subscriber() is 'Trigger: MDN format, one live line per MDN and per SIM in an organization, with plain messages.';
comment on function private.validate_subscription() is 'Trigger: no overlapping plans on one line, with a plain message.';
