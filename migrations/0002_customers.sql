-- What the IVR flows' built-in lookups read. Demo rows come from
-- `hotline seed-demo`, never from a migration.

CREATE TABLE customers (
    id                 uuid PRIMARY KEY,
    name               text   NOT NULL,
    phone_numbers      text[] NOT NULL DEFAULT '{}', -- as callers present them (E.164 or user part)
    email              text,
    preferred_language text,                          -- en / zh
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX customers_phone_numbers ON customers USING gin (phone_numbers);

CREATE TABLE subscriptions (
    id          uuid PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    plan        text NOT NULL,
    status      text NOT NULL CHECK (status IN ('active', 'trialing', 'past_due', 'paused', 'cancelled', 'expired')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    renews_at   timestamptz
);

CREATE INDEX subscriptions_customer_id ON subscriptions (customer_id);

CREATE TABLE orders (
    id           uuid PRIMARY KEY,
    order_number text   NOT NULL UNIQUE,
    customer_id  uuid   NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    course       text   NOT NULL,
    status       text   NOT NULL CHECK (status IN ('pending', 'paid', 'refunded', 'cancelled', 'failed')),
    amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
    currency     text   NOT NULL DEFAULT 'USD',
    purchased_at timestamptz NOT NULL
);

CREATE INDEX orders_customer_id ON orders (customer_id);
