import Foundation
import Logging
import NIOCore
import PostgresNIO
import WingtelDatabase

/// `wingtel seed demo`: a deterministic MVNO — staff, customers, catalog, accounts, lines on
/// SIMs and devices, plan changes, port-ins, SIM swaps, churn and daily usage — loaded with
/// COPY through the same constraints and triggers as real data. The same seed and `asOf`
/// give the same rows. Distributions: docs/DEMO_DATA.md.
public struct DemoGenerator: Sendable {
    public struct Options: Sendable {
        public var slug: String
        public var subscribers: Int
        public var months: Int
        public var seed: UInt64
        /// The day the data ends (UTC); usage runs up to the day before.
        public var asOf: Date
        /// Bill every month of the window with the billing functions, with payments and dunning.
        public var billing: Bool

        public init(
            slug: String = "acme-demo", subscribers: Int = 5_000, months: Int = 6, seed: UInt64 = 42, asOf: Date = Date(),
            billing: Bool = true
        ) {
            self.slug = slug
            self.subscribers = subscribers
            self.months = months
            self.seed = seed
            self.asOf = asOf
            self.billing = billing
        }
    }

    public struct Summary: Sendable {
        public var organizationID: UUID
        public var rows: [(table: String, count: Int)]
        public var logins: [(email: String, role: String)]
        public var seconds: Double
    }

    public enum DemoError: Error, CustomStringConvertible, Sendable {
        case exists(String)
        case invalid(String)
        /// The generated data broke a rule the bulk load checks itself (a bug in the generator).
        case inconsistent(String)
        public var description: String {
            switch self {
            case .exists(let slug):
                return "an organization '\(slug)' already exists; choose another --org, or start afresh with `wingtel db reset`"
            case .invalid(let reason): return reason
            case .inconsistent(let reason):
                return "the demo generator made inconsistent data (\(reason)); nothing was loaded — please report it"
            }
        }
    }

    public var options: Options
    public var logger: Logger

    public init(options: Options, logger: Logger = Logger(label: "wingtel.demo")) {
        self.options = options
        self.logger = logger
    }

    // The catalog (prices like US MVNO plans in 2026).
    struct PlanSpec {
        var code: String
        var name: String
        var price: Int
        var dataMB: Int?
        var rate: Int
        var weight: Double
    }
    static let plans: [PlanSpec] = [
        PlanSpec(code: "TALK-TEXT", name: "Unlimited Talk & Text + 1 GB", price: 1500, dataMB: 1024, rate: 0, weight: 0.20),
        PlanSpec(code: "DATA-5", name: "5 GB", price: 2500, dataMB: 5120, rate: 0, weight: 0.30),
        PlanSpec(code: "DATA-15", name: "15 GB", price: 3500, dataMB: 15360, rate: 1, weight: 0.25),
        PlanSpec(code: "UNLIMITED", name: "Unlimited", price: 4500, dataMB: nil, rate: 2, weight: 0.20),
        PlanSpec(code: "UNLIMITED-PLUS", name: "Unlimited Plus (hotspot 50 GB)", price: 6000, dataMB: nil, rate: 2, weight: 0.05),
    ]
    static let places: [(city: String, state: String, zip: String, county: String, area: String, weight: Double)] = [
        ("Chicago", "IL", "60606", "Cook", "312", 0.16), ("Brooklyn", "NY", "11201", "Kings", "718", 0.14),
        ("Houston", "TX", "77002", "Harris", "713", 0.12), ("Los Angeles", "CA", "90012", "Los Angeles", "213", 0.14),
        ("Miami", "FL", "33130", "Miami-Dade", "305", 0.09), ("Seattle", "WA", "98101", "King", "206", 0.07),
        ("Denver", "CO", "80202", "Denver", "303", 0.07), ("Atlanta", "GA", "30303", "Fulton", "404", 0.08),
        ("Portland", "OR", "97204", "Multnomah", "503", 0.05), ("Nashville", "TN", "37203", "Davidson", "615", 0.08),
    ]
    static let firstNames = [
        "Dana", "Sam", "Alex", "Maria", "Jordan", "Priya", "Wei", "Luis", "Aisha", "Tom", "Grace", "Omar", "Lena", "Ravi", "Sofia", "Ken",
    ]
    static let lastNames = [
        "Reyes", "Ortiz", "Nguyen", "Smith", "Patel", "Kim", "Garcia", "Brown", "Okafor", "Jensen", "Rossi", "Haddad", "Moreau", "Silva",
    ]

    struct Line {
        var id: UUID
        var account: UUID
        var mdn: String
        var carrier: Int
        var sim: UUID
        var device: UUID
        var activated: Date
        var cancelled: Date?
        var suspended: Bool
        var plans: [(plan: Int, from: Date)]
        var appetiteMB: Double
        var voiceMedian: Double
        var smsMedian: Double
        var portedIn: Bool
        var swappedSIM: UUID?
    }

    public func run(_ settings: ConnectionSettings, progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Summary {
        guard options.subscribers > 0, options.months > 0, options.months <= 36 else {
            throw DemoError.invalid("--subscribers must be positive and --months between 1 and 36")
        }
        guard options.slug.wholeMatch(of: /[a-z0-9][a-z0-9-]{1,62}/) != nil else {
            throw DemoError.invalid("--org must be lower-case letters, digits and dashes (2–63 characters)")
        }
        let started = ContinuousClock.now
        // The slug is part of the stream, so two demo organizations in one database never share ids
        // (auth.users is global); FNV-1a keeps it the same on every platform.
        let slugHash = options.slug.utf8.reduce(UInt64(0xCBF2_9CE4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01B3 }
        var random = DemoRandom(seed: options.seed ^ slugHash)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let end = calendar.startOfDay(for: options.asOf)
        let windowStart = calendar.date(byAdding: .month, value: -options.months, to: end)!
        let slug = options.slug
        let org = random.uuid()
        let carriers = (0..<3).map { _ in random.uuid() }
        let ratePlans = (0..<3).map { _ in random.uuid() }
        let planIDs = Self.plans.map { _ in random.uuid() }
        let addOns = (0..<3).map { _ in random.uuid() }
        let staffRoles = ["owner", "admin", "operator", "agent", "analyst", "viewer"]
        let staff = staffRoles.map { ($0, random.uuid()) }

        // Lines, grouped into accounts of one to five.
        var lines: [Line] = []
        var accounts: [(id: UUID, name: String, place: Int, billingDay: Int, external: String)] = []
        var counter = 0
        while lines.count < options.subscribers {
            let size = min(random.pick([(1, 0.45), (2, 0.25), (3, 0.15), (4, 0.10), (5, 0.05)]), options.subscribers - lines.count)
            let place = random.pick(Self.places.indices.map { ($0, Self.places[$0].weight) })
            let account = random.uuid()
            let name =
                "\(Self.firstNames[random.int(0...Self.firstNames.count - 1)]) \(Self.lastNames[random.int(0...Self.lastNames.count - 1)])"
            accounts.append((account, name, place, random.int(1...28), "BQ-\(100_000 + accounts.count)"))
            for _ in 0..<size {
                counter += 1
                let exchange = Self.exchange(counter / 10_000)
                let mdn = "+1\(Self.places[place].area)\(exchange)\(String(format: "%04d", counter % 10_000))"
                let tenureDays = random.int(30...(options.months * 30 + 720))
                let activated = max(
                    calendar.date(byAdding: .day, value: -tenureDays, to: end)!, calendar.date(byAdding: .year, value: -3, to: end)!
                )
                .addingTimeInterval(Double(random.int(8 * 3600...20 * 3600)))
                let churns = random.chance(min(0.02 * Double(options.months), 0.5))
                let cancelled: Date? =
                    churns
                    ? max(activated, windowStart).addingTimeInterval(random.uniform() * end.timeIntervalSince(max(activated, windowStart)))
                        .addingTimeInterval(0) : nil
                var plan = random.pick(Self.plans.indices.map { ($0, Self.plans[$0].weight) })
                var plans = [(plan: plan, from: activated)]
                if random.chance(0.15) {
                    let change = windowStart.addingTimeInterval(random.uniform() * end.timeIntervalSince(windowStart))
                    let latest = cancelled ?? end
                    if change > activated.addingTimeInterval(86_400) && change < latest.addingTimeInterval(-86_400) {
                        plan = (plan + (random.chance(0.6) ? 1 : Self.plans.count - 1)) % Self.plans.count
                        plans.append((plan, change))
                    }
                }
                // Appetite relative to the allowance: most lines fit, some run over, some use little.
                let allowance = Double(Self.plans[plans[0].plan].dataMB ?? 30_000)
                let appetite =
                    allowance / 30
                    * random.pick([
                        (random.logNormal(median: 0.5, sigma: 0.4), 0.75), (random.logNormal(median: 1.4, sigma: 0.2), 0.10),
                        (random.logNormal(median: 0.08, sigma: 0.5), 0.15),
                    ])
                lines.append(
                    Line(
                        id: random.uuid(), account: account, mdn: mdn, carrier: random.pick([(0, 0.5), (1, 0.3), (2, 0.2)]),
                        sim: random.uuid(), device: random.uuid(), activated: activated, cancelled: cancelled,
                        suspended: cancelled == nil && random.chance(0.015), plans: plans, appetiteMB: appetite,
                        voiceMedian: random.logNormal(median: 600, sigma: 0.7), smsMedian: random.logNormal(median: 12, sigma: 0.8),
                        portedIn: random.chance(0.25), swappedSIM: random.chance(0.03) ? random.uuid() : nil))
            }
        }
        let customers = accounts.prefix(3).enumerated().map { index, account in
            (email: "customer\(index + 1)@\(slug).demo", id: random.uuid(), account: account.id)
        }

        var counts: [(String, Int)] = []
        try await Database.withConnection(settings, logger: logger) { connection in
            // Hand-written SQL on purpose: bulk loading with COPY into the tables themselves.
            try await connection.execute("begin", logger: logger)
            do {
                try await connection.execute("select set_config('wingtel.actor', 'wingtel seed demo', true)", logger: logger)
                try await connection.execute("select set_config('wingtel.bulk_load', 'on', true)", logger: logger)
                let existing = try await connection.query(
                    "select count(*)::int from public.organizations where slug = \(slug)", logger: logger)
                for try await count in existing.decode(Int.self) where count > 0 { throw DemoError.exists(slug) }
                progress("Creating \(slug): staff, catalog, \(accounts.count) accounts, \(lines.count) lines …")

                let logins = staff.map { ($0.1, "\($0.0)@\(slug).demo") } + customers.map { ($0.id, $0.email) }
                for (id, email) in logins {
                    try await connection.run(
                        "insert into auth.users (id, email, aud, role, email_confirmed_at) values (\(id), \(email), 'authenticated', 'authenticated', \(end))",
                        logger: logger)
                }
                let settingsJSON = #"{"self_service": {"change_plan": true, "add_add_on": true, "report_lost": true}}"#
                try await connection.run(
                    "insert into public.organizations (id, slug, name, time_zone, created_by, settings) values (\(org), \(slug), 'Acme Demo Mobile', 'America/Chicago', \(staff[0].1), \(settingsJSON)::jsonb)",
                    logger: logger)
                for (role, id) in staff {
                    try await connection.run(
                        "insert into public.organization_members (organization_id, user_id, role) values (\(org), \(id), \(role)::public.member_role)",
                        logger: logger)
                }
                let carrierRows: [(String, String, String, Int?, Int?, Bool)] = [
                    ("verizon", "Verizon", "thingspace", 5, 4, false), ("att", "AT&T", "att_control_center", nil, nil, true),
                    ("tmobile", "T-Mobile (aggregator)", "tmobile_aggregator", nil, nil, true),
                ]
                for (index, carrier) in carrierRows.enumerated() {
                    try await connection.run(
                        """
                        insert into public.carriers (organization_id, id, code, name, adapter, max_actions_per_line_per_day, max_plan_changes_per_month, allows_plan_change_while_suspended)
                        values (\(org), \(carriers[index]), \(carrier.0), \(carrier.1), \(carrier.2)::public.carrier_adapter, \(carrier.3), \(carrier.4), \(carrier.5))
                        """, logger: logger)
                }
                let rateRows: [(String, String, Int, Int?, Bool)] = [
                    ("WHSL-5GB-POOL", "Wholesale 5 GB pooled", 700, 5120, true), ("WHSL-15GB", "Wholesale 15 GB", 1100, 15360, false),
                    ("WHSL-UNL", "Wholesale unlimited", 1700, nil, false),
                ]
                for (index, rate) in rateRows.enumerated() {
                    try await connection.run(
                        """
                        insert into public.carrier_rate_plans (organization_id, id, carrier_id, code, name, monthly_cost_cents, included_data_mb, overage_data_cents_per_mb, pooled)
                        values (\(org), \(ratePlans[index]), \(carriers[0]), \(rate.0), \(rate.1), \(rate.2), \(rate.3), 0.008, \(rate.4))
                        """, logger: logger)
                }
                for (index, plan) in Self.plans.enumerated() {
                    try await connection.run(
                        """
                        insert into public.plans (organization_id, id, code, name, price_cents, data_mb, overage_data_cents_per_gb, carrier_rate_plan_id)
                        values (\(org), \(planIDs[index]), \(plan.code), \(plan.name), \(plan.price), \(plan.dataMB), \(plan.dataMB == nil ? 0 : 1000), \(ratePlans[plan.rate]))
                        """, logger: logger)
                }
                let addOnRows: [(String, String, String, String, Int, Int?)] = [
                    ("DATA-2GB", "2 GB data pack", "data_pack", "one_off", 1000, 2048),
                    ("DATA-10GB", "10 GB data pack", "data_pack", "one_off", 2500, 10240),
                    ("INTL", "International calling", "international", "monthly", 500, nil),
                ]
                for (index, addOn) in addOnRows.enumerated() {
                    try await connection.run(
                        """
                        insert into public.add_ons (organization_id, id, code, name, kind, recurrence, price_cents, data_mb)
                        values (\(org), \(addOns[index]), \(addOn.0), \(addOn.1), \(addOn.2)::public.add_on_kind, \(addOn.3)::public.recurrence, \(addOn.4), \(addOn.5))
                        """, logger: logger)
                }

                func copy(_ table: String, _ columns: [String], _ rows: [[String?]]) async throws {
                    try await connection.copyFrom(table: table, columns: columns, logger: logger) { writer in
                        var buffer = ByteBuffer()
                        for row in rows {
                            buffer.writeString(CopyText.row(row))
                            if buffer.readableBytes > 1 << 20 {
                                try await writer.write(buffer)
                                buffer.clear()
                            }
                        }
                        if buffer.readableBytes > 0 { try await writer.write(buffer) }
                    }
                    counts.append((table, rows.count))
                }
                let o = org.uuidString.lowercased()
                func ts(_ date: Date) -> String { WingtelTimestamp.format(date) }

                try await copy(
                    "accounts",
                    [
                        "organization_id", "id", "external_id", "name", "email", "address_line1", "city", "state", "postal_code", "county",
                        "billing_day", "created_at",
                    ],
                    accounts.enumerated().map { index, account in
                        let place = Self.places[account.place]
                        return [
                            o, account.id.uuidString, account.external, account.name, "customer\(index + 1)@\(slug).demo",
                            "\(100 + index % 900) Main St",
                            place.city, place.state, place.zip, place.county, String(account.billingDay), ts(windowStart),
                        ]
                    })
                var simRows: [[String?]] = []
                var deviceRows: [[String?]] = []
                for (index, line) in lines.enumerated() {
                    let esim = index % 5 == 0
                    let iccid = DemoRandom.withLuhn("8901260\(String(format: "%012d", index + 1))")
                    let live = line.cancelled == nil
                    simRows.append([
                        o, line.sim.uuidString, iccid, esim ? "esim" : "physical",
                        esim ? String(format: "8904903200%022d", index + 1) : nil,
                        carriers[line.carrier].uuidString, live ? (line.suspended ? "suspended" : "active") : "deactivated",
                    ])
                    if let old = line.swappedSIM {
                        simRows.append([
                            o, old.uuidString, DemoRandom.withLuhn("8901261\(String(format: "%012d", index + 1))"), "physical", nil,
                            carriers[line.carrier].uuidString, "deactivated",
                        ])
                    }
                    deviceRows.append([
                        o, line.device.uuidString, DemoRandom.withLuhn("35\(String(format: "%012d", index + 1))"),
                        index % 3 == 0 ? "Google" : "Apple", index % 3 == 0 ? "Pixel 8" : "iPhone 15", index % 10 < 3 ? "true" : "false",
                        "compatible",
                    ])
                }
                for index in 0..<max(options.subscribers / 20, 5) {  // spare inventory
                    simRows.append([
                        o, random.uuid().uuidString, DemoRandom.withLuhn("8901262\(String(format: "%012d", index + 1))"), "physical", nil,
                        carriers[0].uuidString, "inventory",
                    ])
                }
                try await copy("sim_cards", ["organization_id", "id", "iccid", "kind", "eid", "carrier_id", "state"], simRows)
                try await copy("devices", ["organization_id", "id", "imei", "make", "model", "byod", "compatibility"], deviceRows)
                try await copy(
                    "subscribers",
                    [
                        "organization_id", "id", "account_id", "mdn", "carrier_id", "status", "network_status", "suspend_reason",
                        "current_sim_id", "current_device_id",
                        "external_id", "activated_at", "cancelled_at", "created_at",
                    ],
                    lines.enumerated().map { index, line in
                        let status = line.cancelled != nil ? "cancelled" : (line.suspended ? "suspended" : "active")
                        return [
                            o, line.id.uuidString, line.account.uuidString, line.mdn, carriers[line.carrier].uuidString, status,
                            line.cancelled != nil ? "deactivated" : (line.suspended ? "suspended" : "active"),
                            line.suspended ? "non_payment" : nil,
                            line.sim.uuidString, line.device.uuidString, "BQ-SUB-\(200_000 + index)", ts(line.activated),
                            line.cancelled.map(ts), ts(line.activated),
                        ]
                    })
                var subscriptionRows: [[String?]] = []
                var portRows: [[String?]] = []
                var eventRows: [[String?]] = []
                for line in lines {
                    for (index, period) in line.plans.enumerated() {
                        let until = index + 1 < line.plans.count ? line.plans[index + 1].from : line.cancelled
                        let range = "[\"\(ts(period.from))\",\(until.map { "\"\(ts($0))\"" } ?? ""))"
                        subscriptionRows.append([
                            o, random.uuid().uuidString, line.id.uuidString, planIDs[period.plan].uuidString, range,
                            index == 0 ? "activation" : "plan change", ts(period.from),
                        ])
                        if index > 0 {
                            eventRows.append([
                                o, line.id.uuidString, ts(period.from), "plan_change_requested", nil, "wingtel seed demo",
                                "{\"to\": \"\(Self.plans[period.plan].code)\"}",
                            ])
                        }
                    }
                    if line.portedIn {
                        portRows.append([
                            o, random.uuid().uuidString, line.id.uuidString, "in", line.mdn,
                            ["Old Mobile", "Big Carrier", "Prepaid Co"][line.mdn.count % 3],
                            "completed", ts(line.activated.addingTimeInterval(-3600)), ts(line.activated),
                        ])
                    }
                    eventRows.append([
                        o, line.id.uuidString, ts(line.activated.addingTimeInterval(-60)),
                        line.portedIn ? "port_in_requested" : "activation_requested",
                        nil, "wingtel seed demo", "{}",
                    ])
                    eventRows.append([
                        o, line.id.uuidString, ts(line.activated), line.portedIn ? "port_in_confirmed" : "activate_confirmed", nil,
                        "wingtel seed demo", "{}",
                    ])
                    if line.swappedSIM != nil {
                        eventRows.append([
                            o, line.id.uuidString, ts(line.activated.addingTimeInterval(86_400 * 40)), "swap_sim_confirmed", nil,
                            "wingtel seed demo", "{}",
                        ])
                    }
                    if line.suspended {
                        eventRows.append([
                            o, line.id.uuidString, ts(end.addingTimeInterval(-86_400 * 5)), "suspend_requested", "non_payment",
                            "wingtel seed demo", "{}",
                        ])
                    }
                    if let cancelled = line.cancelled {
                        eventRows.append([
                            o, line.id.uuidString, ts(cancelled), "cancel_requested", "customer request", "wingtel seed demo", "{}",
                        ])
                    }
                }
                try await copy(
                    "subscriptions", ["organization_id", "id", "subscriber_id", "plan_id", "effective", "reason", "carrier_confirmed_at"],
                    subscriptionRows)
                try await copy(
                    "port_requests",
                    [
                        "organization_id", "id", "subscriber_id", "direction", "mdn", "other_carrier", "status", "requested_at",
                        "completed_at",
                    ], portRows)
                try await copy(
                    "subscriber_events", ["organization_id", "subscriber_id", "occurred_at", "kind", "reason", "actor_name", "details"],
                    eventRows)
                for customer in customers {
                    try await connection.run(
                        "insert into public.customer_identities (organization_id, user_id, account_id) values (\(org), \(customer.id), \(customer.account))",
                        logger: logger)
                }

                // Daily usage, streamed: heavy-tailed per line, weekends and summer a little higher,
                // churners fading over their last six weeks.
                progress("Generating daily usage for \(lines.count) lines over \(options.months) months …")
                // The rollups carry no foreign key (ingestion resolves lines itself); this loader
                // proves the same rule set-based right after the COPY (one anti-join).
                var usageCount = 0
                try await connection.copyFrom(
                    table: "usage_daily", columns: ["organization_id", "subscriber_id", "day", "data_bytes", "voice_seconds", "sms_count"],
                    logger: logger
                ) { writer in
                    var buffer = ByteBuffer()
                    for (index, line) in lines.enumerated() {
                        let first = Int((max(line.activated, windowStart).timeIntervalSince1970 / 86_400).rounded(.down))
                        let last = Int(((line.cancelled ?? end).timeIntervalSince1970 / 86_400).rounded(.down))
                        let cancelDay = line.cancelled.map { Int(($0.timeIntervalSince1970 / 86_400).rounded(.down)) }
                        let idText = line.id.uuidString
                        var day = first
                        while day < last {
                            let civil = CivilDay(daysSinceEpoch: day)
                            let weekday = (day + 4) % 7  // 0 = Sunday (1970-01-01 was a Thursday)
                            var factor = (weekday == 0 || weekday == 6) ? 1.15 : 1.0
                            if (6...8).contains(civil.month) { factor *= 1.1 }
                            if civil.month == 12 { factor *= 1.05 }
                            if let cancelDay, cancelDay - day < 42 { factor *= 0.4 + 0.6 * Double(cancelDay - day) / 42 }
                            let dataMB = line.appetiteMB * factor * random.logNormal(median: 1, sigma: 0.45)
                            let voice = Int(line.voiceMedian * random.logNormal(median: 1, sigma: 0.6))
                            let sms = Int(line.smsMedian * random.logNormal(median: 1, sigma: 0.7))
                            buffer.writeString("\(o)\t\(idText)\t\(civil.text)\t\(Int64(dataMB * 1_048_576))\t\(voice)\t\(sms)\n")
                            usageCount += 1
                            if buffer.readableBytes > 1 << 20 {
                                try await writer.write(buffer)
                                buffer.clear()
                            }
                            day += 1
                        }
                        if (index + 1) % max(lines.count / 10, 1) == 0 {
                            progress("  usage: \(index + 1)/\(lines.count) lines, \(usageCount) days")
                        }
                    }
                    if buffer.readableBytes > 0 { try await writer.write(buffer) }
                }
                counts.append(("usage_daily", usageCount))
                let orphans = try await connection.query(
                    """
                    select count(*)::int from public.usage_daily d
                    where d.organization_id = \(org)
                      and not exists (select 1 from public.subscribers s where s.organization_id = d.organization_id and s.id = d.subscriber_id)
                    """, logger: logger)
                for try await count in orphans.decode(Int.self) where count > 0 {
                    throw DemoError.inconsistent("\(count) usage rollups name no line")
                }

                // SMS: the organization's number and a few hundred conversations — keyword requests
                // answered automatically, questions answered by an agent (some still waiting in the
                // care inbox), and opt-outs.
                let number = "+1833\(String(format: "%07d", Int(slugHash % 8_000_000) + 2_000_000))"
                try await connection.run(
                    "insert into public.messaging_numbers (organization_id, id, phone_number, label) values (\(org), \(random.uuid()), \(number), 'Customer care')",
                    logger: logger)
                let agent = staff.first { $0.0 == "agent" }!.1.uuidString
                var smsRows: [[String?]] = []
                var optOutRows: [[String?]] = []
                let keywords = [
                    ("HELP", "Reply BAL for your balance, USAGE for this cycle's usage, STOP to unsubscribe."),
                    ("BAL", "Acme Demo Mobile: you owe $0.00; wallet balance $0.00."),
                    ("USAGE", "Acme Demo Mobile: see your usage this cycle in the app or reply HELP."),
                ]
                let questions = [
                    "My data is really slow today", "Can I add a line for my son?", "Why was I charged twice this month?",
                    "How do I set up my eSIM?", "Is there an outage downtown?", "Can I keep my number if I move?",
                ]
                let answers = [
                    "Sorry about that! We reset your connection; restart your phone and it should be back to full speed.",
                    "Of course, reply with a good time to call or add it in the app under Lines.",
                    "We checked your account: the second charge was a pending authorization and has been released.",
                    "Open Settings > Cellular > Add eSIM and scan the QR code we emailed you.",
                ]
                let live = lines.filter { $0.cancelled == nil }
                let conversations = min(300, max(live.count / 10, 1))
                var messageIndex = 0
                func sid() -> String {
                    messageIndex += 1
                    return "SMdemo\(String(format: "%026d", messageIndex))"
                }
                for _ in 0..<conversations where !live.isEmpty {
                    let line = live[random.int(0...live.count - 1)]
                    let at = windowStart.addingTimeInterval(random.uniform() * end.timeIntervalSince(windowStart) * 0.98)
                    let inbound = random.uuid().uuidString
                    let kind = random.pick([("keyword", 0.55), ("question", 0.35), ("stop", 0.10)])
                    switch kind {
                    case "keyword":
                        let (word, reply) = keywords[random.int(0...keywords.count - 1)]
                        smsRows.append([
                            o, inbound, "inbound", sid(), line.mdn, number, word, "received", line.account.uuidString, line.id.uuidString,
                            word, nil, nil, nil, ts(at),
                        ])
                        smsRows.append([
                            o, random.uuid().uuidString, "outbound", nil, number, line.mdn, reply, "sent", line.account.uuidString,
                            line.id.uuidString, nil, nil, inbound, nil, ts(at.addingTimeInterval(1)),
                        ])
                    case "question":
                        let answered = random.chance(0.9) && at < end.addingTimeInterval(-2 * 86_400)
                        smsRows.append([
                            o, inbound, "inbound", sid(), line.mdn, number, questions[random.int(0...questions.count - 1)], "received",
                            line.account.uuidString, line.id.uuidString, nil, "care", nil, nil, ts(at),
                        ])
                        smsRows.append([
                            o, random.uuid().uuidString, "outbound", nil, number, line.mdn,
                            "Acme Demo Mobile: thanks, our care team will answer you here soon. Reply HELP for options.", "sent",
                            line.account.uuidString, line.id.uuidString, nil, nil, inbound, nil, ts(at.addingTimeInterval(1)),
                        ])
                        if answered {
                            smsRows.append([
                                o, random.uuid().uuidString, "outbound", sid(), number, line.mdn,
                                answers[random.int(0...answers.count - 1)],
                                random.chance(0.95) ? "delivered" : "undelivered", line.account.uuidString, line.id.uuidString, nil, nil,
                                inbound, agent, ts(at.addingTimeInterval(Double(random.int(300...14_400)))),
                            ])
                        }
                    default:
                        guard !optOutRows.contains(where: { $0[1] == line.mdn }) else { continue }
                        smsRows.append([
                            o, inbound, "inbound", sid(), line.mdn, number, "STOP", "received", line.account.uuidString, line.id.uuidString,
                            "STOP", nil, nil, nil, ts(at),
                        ])
                        optOutRows.append([o, line.mdn, "STOP", ts(at)])
                    }
                }
                try await copy(
                    "sms_messages",
                    [
                        "organization_id", "id", "direction", "provider_sid", "from_number", "to_number", "body", "status", "account_id",
                        "subscriber_id", "keyword", "routed_to", "in_reply_to", "sent_by", "created_at",
                    ], smsRows)
                try await copy("sms_opt_outs", ["organization_id", "phone_number", "keyword", "opted_out_at"], optOutRows)
                try await connection.execute("commit", logger: logger)
            } catch {
                try? await connection.execute("rollback", logger: logger)
                throw error
            }
        }
        // Fresh statistics, so the first queries on the demo data get sensible plans.
        try await Database.withConnection(settings, logger: logger) { connection in
            try await connection.execute(
                "analyze public.accounts, public.sim_cards, public.devices, public.subscribers, public.subscriptions, public.port_requests, public.subscriber_events, public.usage_daily",
                logger: logger)
        }
        if options.billing {
            progress("Billing \(options.months) months: bill runs, payments (some declined), wallet top-ups, dunning …")
            let history = try await Database.withConnection(settings, logger: logger) { connection in
                try await connection.execute("begin", logger: logger)
                do {
                    try await connection.execute("select set_config('wingtel.actor', 'wingtel seed demo', true)", logger: logger)
                    let history = try await loadBillingHistory(
                        on: connection, organization: org, from: windowStart, to: end, progress: progress)
                    try await connection.execute("commit", logger: logger)
                    return history
                } catch {
                    try? await connection.execute("rollback", logger: logger)
                    throw error
                }
            }
            counts.append(("invoices", history.invoices))
            counts.append(("payments", history.payments + history.failedPayments))
            counts.append(("wallet top-ups", history.topUps))
        }
        let elapsed = ContinuousClock.now - started
        return Summary(
            organizationID: org, rows: counts,
            logins: staff.map { ("\($0.0)@\(slug).demo", $0.0) } + customers.map { ($0.email, "customer") },
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// Exchange codes 200–999 without N11 ones.
    static func exchange(_ index: Int) -> String {
        let valid = (200...999).filter { $0 % 100 != 11 }
        return String(valid[index % valid.count])
    }
}

/// Timestamps in the form PostgreSQL reads back exactly.
enum WingtelTimestamp {
    static func format(_ date: Date) -> String {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: Double(seconds)))
    }

}

/// A calendar date from days since 1970-01-01 (proleptic Gregorian; Howard Hinnant's algorithm),
/// without Foundation's calendar on the hot path.
struct CivilDay {
    var year: Int
    var month: Int
    var day: Int

    init(daysSinceEpoch: Int) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = doy - (153 * mp + 2) / 5 + 1
        month = mp < 10 ? mp + 3 : mp - 9
        year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    }

    var text: String {
        let m = month < 10 ? "0\(month)" : "\(month)"
        let d = day < 10 ? "0\(day)" : "\(day)"
        return "\(year)-\(m)-\(d)"
    }
}
