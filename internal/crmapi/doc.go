// Package crmapi serves the CRM provisioning-request API (api/crm.yaml)
// under /crmapi/rest/v2/: login and token release, and the
// conax_web_services and conax_sms_sas provisioning_requests methods. It
// decodes and validates the wire form, calls the pay-TV domain, and maps
// every outcome to the {status, data} envelope; it holds no business rule
// and no SQL.
package crmapi
