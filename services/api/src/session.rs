//! `Session`: logins.

use enclave_access::TOKEN_LIFETIME;
use enclave_rpc::{client_address, status};
use tonic::{Request, Response, Status};

use crate::proto::session_server::Session;
use crate::proto::{LoginRequest, LoginResponse, User, WhoAmIRequest};
use crate::{Api, convert};

#[tonic::async_trait]
impl Session for Api {
    async fn login(
        &self,
        request: Request<LoginRequest>,
    ) -> Result<Response<LoginResponse>, Status> {
        let address = client_address(&request);
        let LoginRequest { user, password } = request.into_inner();
        let token = self
            .access()
            .login(&user, &password, address)
            .await
            .map_err(status)?;
        Ok(Response::new(LoginResponse {
            token,
            expires_in: TOKEN_LIFETIME.as_secs(),
        }))
    }

    async fn who_am_i(&self, request: Request<WhoAmIRequest>) -> Result<Response<User>, Status> {
        let user = self.caller(&request).await?;
        Ok(Response::new(convert::user(&user)))
    }
}
