//! API tests: the real server over HTTP, on SQLite by default and on PostgreSQL when
//! ORDO_TEST_DATABASE_URL is set.

mod bad_input;
mod catalog;
mod checkout;
mod concurrency;
mod crash;
mod edge;
mod event_crash;
mod events;
mod forecasts;
mod foundations;
mod helpers;
mod lifecycle;
mod locations;
mod metrics;
mod nats;
mod notifications;
mod passkeys;
mod push_receiver;
mod receiver;
mod routing;
mod security;
mod smtp_server;
mod stock;
mod webhooks;
