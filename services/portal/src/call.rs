//! Calls into the API services in-process, as the visitor.

use tonic::Request;
use tonic::metadata::MetadataValue;

use crate::session::SignedIn;

/// `message` as a call of `user`, carrying their bearer token.
pub(crate) fn as_user<T>(user: &SignedIn, message: T) -> Request<T> {
    let mut request = Request::new(message);
    authorize(&mut request, &user.token);
    request
}

/// Adds `authorization: Bearer <token>`; a token that is not a valid header
/// value is left out, and the API refuses the call as unauthenticated.
pub(crate) fn authorize<T>(request: &mut Request<T>, token: &str) {
    if let Ok(value) = MetadataValue::try_from(format!("Bearer {token}")) {
        request.metadata_mut().insert("authorization", value);
    }
}
