-- +goose Up
-- The indexes of paytv_requests, fitted to what reads them.
--
-- paytv_requests_org (organisation_id, provider, number) served no query:
-- a list names a type, a state or a reference number, and a lookup by id or
-- number uses its unique column. Every request's insert and its outcome's
-- update (which changes indexed columns, so it writes every index)
-- maintained it all the same.
--
-- A list by reference number read the organisation's every request: the
-- index on reference_number alone lost to an index seeking on the
-- organisation and provider (two equalities against one). The reference's
-- index now seeks on all three and keeps the list's order.
DROP INDEX paytv_requests_org;
DROP INDEX paytv_requests_reference;
CREATE INDEX paytv_requests_reference ON paytv_requests (organisation_id, provider, reference_number, number)
	WHERE reference_number IS NOT NULL;

-- +goose Down
DROP INDEX paytv_requests_reference;
CREATE INDEX paytv_requests_reference ON paytv_requests (reference_number) WHERE reference_number IS NOT NULL;
CREATE INDEX paytv_requests_org ON paytv_requests (organisation_id, provider, number);
