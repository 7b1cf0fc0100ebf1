#!/usr/bin/env python3
"""Writes a deterministic BeQuick subscription export (B7 input) to stdout.

    benchmarks/bequick_export.py --rows 1000000 --seed 7 > /tmp/bequick-1m.csv

The catalog is the seed organization's (acme-mobile): plans "Talk & Text + 1 GB", "5 GB",
"Unlimited"; carriers Verizon, AT&T, T-Mobile. Accounts hold one to four lines. About 1% of
the rows carry a planted problem (bad MDN, ICCID or e-mail, unknown plan or status) so that
validation has something to report; 8% of the lines are cancelled, 3% suspended, 2% pending.
"""
import argparse
import random
import sys

HEADER = ("network,subscription_id,first_name,last_name,mdn,device_id,icc_id,user_profile_id,subscription_status,"
          "effective_date,expiration_date,expiration_type,email,plan_name,plan_price,reference,plan_id,sub_created_by,"
          "profile_created_by,acl_group_name,profile_name,owner_acl_group_name,vendor,carrier")
PLANS = [("Talk & Text + 1 GB", "15.00", "PL-TT"), ("5 GB", "25.00", "PL-5GB"), ("Unlimited", "45.00", "PL-UNL")]
CARRIERS = [("Verizon", "verizon"), ("AT&T", "att"), ("T-Mobile", "tmobile")]
FIRST = ["Maria", "James", "Wei", "Ana", "Sam", "Lee", "Olga", "Noah", "Nia", "Omar", "Pia", "Raj", "Ava", "Ben", "Cal", "Dee"]
AREAS = [a for a in range(201, 1000) if a % 100 != 11 and (a // 10) % 10 != 9]
EXCHANGES = [e for e in range(200, 1000) if e % 100 != 11]
LAST = ["Garcia", "Smith", "Chen", "Silva", "Patel", "Wong", "Ivanova", "Kim", "Brooks", "Haddad", "Novak", "Mehta", "Jones"]


def luhn(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    out = sys.stdout
    out.write(HEADER + "\n")
    line = 0
    account = 0
    while line < args.rows:
        account += 1
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{last.lower()}{account}@example.com"
        for _ in range(min(rng.choice([1, 1, 1, 2, 2, 3, 4]), args.rows - line)):
            line += 1
            plan, price, plan_id = PLANS[rng.choice([0, 1, 1, 1, 2, 2])]
            network, carrier = CARRIERS[rng.choice([0, 0, 1, 2])]
            # Valid NANP numbers: no N11 area code or exchange, no N9X area code.
            exchange = EXCHANGES[(line // 10_000) % len(EXCHANGES)]
            area = AREAS[(line // (10_000 * len(EXCHANGES))) % len(AREAS)]
            number = f"{area}{exchange}{line % 10_000:04d}"
            status = rng.choices(["active", "cancelled", "suspended", "pending"], [87, 8, 3, 2])[0]
            start = f"20{rng.randint(19, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            end = f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}" if status == "cancelled" else ""
            iccid = luhn(f"8901410{line:012d}")
            imei = luhn(f"35{line:012d}")
            mdn = "" if status == "pending" else number
            roll = rng.random()
            if roll < 0.002:
                mdn = "1" + number[1:]            # area code starting 1
            elif roll < 0.004:
                iccid = iccid[:-1] + str((int(iccid[-1]) + 1) % 10)
            elif roll < 0.006:
                email = email.replace("@", " at ")
            elif roll < 0.008:
                plan = "Unlimted"
            elif roll < 0.010:
                status = "zombie"
            out.write(f"{network},SUB-{line},{first},{last},{mdn},{imei},{iccid},P-{account},{status},{start},{end},"
                      f"{'customer request' if end else ''},{email},{plan},{price},,{plan_id},bq.agent,bq.agent,Retail,"
                      f"{first} {last},Acme,Acme Wireless,{carrier}\n")


if __name__ == "__main__":
    main()
