-- +goose Up
-- Pay-TV: the CRM's reference data that provhub keeps a copy of
-- (organisations, units, users, subscriptions, services, installed items),
-- CRM session tokens, and provisioning requests. Times are Unix microseconds.
CREATE TABLE crm_organisations (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE crm_units (
    id               TEXT PRIMARY KEY,
    organisation_id  TEXT NOT NULL REFERENCES crm_organisations (id),
    name             TEXT NOT NULL,
    description      TEXT,
    alternative_code TEXT,
    group_name       TEXT,
    community_name   TEXT
);
CREATE TABLE crm_users (
    id              TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES crm_organisations (id),
    username        TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    person_name     TEXT,
    email           TEXT,
    default_unit_id TEXT NOT NULL REFERENCES crm_units (id),
    UNIQUE (organisation_id, username)
);
-- Only a hash of each token is kept: a copy of the database lets nobody in.
CREATE TABLE crm_tokens (
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES crm_users (id) ON DELETE CASCADE,
    unit_id      TEXT NOT NULL REFERENCES crm_units (id),
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL
);
CREATE INDEX crm_tokens_last_used ON crm_tokens (last_used_at);

CREATE TABLE paytv_subscriptions (
    id               TEXT PRIMARY KEY,
    organisation_id  TEXT NOT NULL REFERENCES crm_organisations (id),
    number           TEXT NOT NULL,
    life_cycle_state TEXT NOT NULL DEFAULT 'ACTIVE',
    UNIQUE (organisation_id, number)
);
CREATE TABLE paytv_services (
    id               TEXT PRIMARY KEY,
    organisation_id  TEXT NOT NULL REFERENCES crm_organisations (id),
    code             TEXT NOT NULL,
    alternative_code TEXT,
    ca_id            TEXT NOT NULL,
    UNIQUE (organisation_id, code)
);
CREATE TABLE paytv_installed_items (
    id                               TEXT PRIMARY KEY,
    organisation_id                  TEXT NOT NULL REFERENCES crm_organisations (id),
    kind                             TEXT NOT NULL CHECK (kind IN ('smartcard', 'stb')),
    serial_number                    TEXT NOT NULL,
    alternative_code                 TEXT,
    ca_id                            TEXT NOT NULL,
    sub_provisioning_distribution_id TEXT,
    UNIQUE (organisation_id, serial_number)
);
CREATE INDEX paytv_installed_items_alt ON paytv_installed_items (organisation_id, alternative_code);
CREATE INDEX paytv_services_alt ON paytv_services (organisation_id, alternative_code);

-- Sequences hand out numbers without serializing concurrent transactions.
CREATE SEQUENCE paytv_request_number;
CREATE SEQUENCE paytv_sequence_number;

CREATE TABLE paytv_requests (
    id                         TEXT PRIMARY KEY,
    number                     BIGINT NOT NULL UNIQUE,
    organisation_id            TEXT NOT NULL REFERENCES crm_organisations (id),
    provider                   TEXT NOT NULL CHECK (provider IN ('conax_web_services', 'conax_sms_sas')),
    type                       TEXT NOT NULL,
    life_cycle_state           TEXT NOT NULL CHECK (life_cycle_state IN ('PENDING', 'COMPLETED', 'REJECTED')),
    priority                   TEXT NOT NULL CHECK (priority IN ('REGULAR', 'EXPRESS')),
    process_immediately        BOOLEAN NOT NULL,
    sequence_number            BIGINT,
    scheduled_at               BIGINT NOT NULL,
    executed_at                BIGINT,
    subscription_id            TEXT REFERENCES paytv_subscriptions (id),
    smartcard_ca_id            TEXT NOT NULL,
    command                    TEXT NOT NULL,
    parameters                 TEXT NOT NULL,
    -- The PIN of UPDATE_CA_PIN_TO_GIVEN_VALUE until the CAS has answered.
    pin                        TEXT,
    request                    TEXT,
    response                   TEXT,
    reference_number           TEXT,
    error_code                 TEXT,
    error_description          TEXT,
    provider_error_code        TEXT,
    provider_error_description TEXT,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL,
    created_by_user_id         TEXT NOT NULL REFERENCES crm_users (id),
    created_by_unit_id         TEXT NOT NULL REFERENCES crm_units (id)
);
CREATE INDEX paytv_requests_org ON paytv_requests (organisation_id, provider, number);
CREATE INDEX paytv_requests_type ON paytv_requests (organisation_id, provider, type, number);
CREATE INDEX paytv_requests_state ON paytv_requests (organisation_id, provider, life_cycle_state, number);
CREATE INDEX paytv_requests_reference ON paytv_requests (reference_number) WHERE reference_number IS NOT NULL;

-- +goose Down
DROP TABLE paytv_requests;
DROP SEQUENCE paytv_sequence_number;
DROP SEQUENCE paytv_request_number;
DROP TABLE paytv_installed_items;
DROP TABLE paytv_services;
DROP TABLE paytv_subscriptions;
DROP TABLE crm_tokens;
DROP TABLE crm_users;
DROP TABLE crm_units;
DROP TABLE crm_organisations;
