//! Certificates, CA certificates, thing principals and endpoints.

use axum::Router;

use crate::Shared;

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
}
