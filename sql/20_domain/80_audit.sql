-- Every business table of the domain writes the audit trail. The event log
-- (subscriber_events) is itself append-only history and is not audited twice.
select audit.enable('public.carriers', 'catalog');
select audit.enable('public.carrier_rate_plans', 'catalog');
select audit.enable('public.plans', 'catalog');
select audit.enable('public.add_ons', 'catalog');
select audit.enable('public.accounts', 'customer_care');
select audit.enable('public.sim_cards', 'operations');
select audit.enable('public.devices', 'customer_care');
select audit.enable('public.subscribers', 'customer_care');
select audit.enable('public.subscriptions', 'customer_care');
select audit.enable('public.subscriber_add_ons', 'customer_care');
select audit.enable('public.port_requests', 'customer_care', excluded_columns => array['account_number', 'pin']);
select audit.enable('public.notes', 'customer_care');
select audit.enable('public.carrier_commands', 'operations');
