//! Assets compiled into the binary: the portal works with no CDN.

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::Portal;

/// Where assets are served.
pub(crate) const PREFIX: &str = "/assets/";
pub(crate) const STYLESHEET_PATH: &str = "/assets/portal.css";
const STYLESHEET: &str = include_str!("../assets/portal.css");
const ICON: &str = include_str!("../assets/icon.svg");

pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route(
            STYLESHEET_PATH,
            get(|| async { asset("text/css; charset=utf-8", STYLESHEET) }),
        )
        .route(
            "/favicon.ico",
            get(|| async { asset("image/svg+xml", ICON) }),
        )
        .route(
            "/assets/icon.svg",
            get(|| async { asset("image/svg+xml", ICON) }),
        )
}

fn asset(media_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(media_type)),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
}
