//! The server side of `privacypass_rpc::PrivacyPass`: what `issue` and `redeem` do, given the
//! caller the request's checks established (in the call's extensions), and the jsonrpsee
//! module of each JSON-RPC route.

use std::sync::Arc;

use privacypass_core::ErrorCode;
use privacypass_rpc::jsonrpsee::core::async_trait;
use privacypass_rpc::jsonrpsee::core::server::{Extensions, Methods};
use privacypass_rpc::jsonrpsee::core::RpcResult;
use privacypass_rpc::jsonrpsee::types::ErrorObjectOwned;
use privacypass_rpc::{
    openrpc, IssueParams, IssueRequest, IssueResult, PrivacyPassServer, RedeemParams,
    RedeemParamsError, Redeemed, DISCOVER, ISSUE, METHODS, REDEEM,
};

use crate::app::App;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::{issuance, redemption};

/// The methods, on the app.
#[derive(Clone, Debug)]
pub struct Rpc {
    app: Arc<App>,
}

/// The caller of a call; a call that reaches a method without one is refused.
fn caller(ext: &Extensions) -> Result<&Caller, ApiError> {
    ext.get::<Caller>()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "a call without its caller"))
}

#[async_trait]
impl PrivacyPassServer for Rpc {
    async fn issue(
        &self,
        ext: &Extensions,
        blinded_token: Option<String>,
        key_id: Option<String>,
        blinded_tokens: Option<Vec<String>>,
        batch: Option<Vec<IssueParams>>,
    ) -> RpcResult<IssueResult> {
        let caller = caller(ext)?;
        let request = IssueRequest::from_fields(blinded_token, key_id, blinded_tokens, batch)
            .map_err(|m| ApiError::new(ErrorCode::InvalidParams, m))?;
        Ok(issuance::issue(&self.app, caller, request).await?)
    }

    async fn redeem(
        &self,
        ext: &Extensions,
        token: Option<String>,
        challenge: Option<String>,
        data: Option<Vec<String>>,
        bindings: Option<Vec<String>>,
        compressed: Option<bool>,
    ) -> RpcResult<Redeemed> {
        let caller = caller(ext)?;
        let params = RedeemParams::from_fields(token, challenge, data, bindings, compressed)
            .map_err(|e| match e {
                RedeemParamsError::Invalid(m) => ApiError::new(ErrorCode::InvalidParams, m),
                RedeemParamsError::Compressed => ApiError::new(
                    ErrorCode::UnsupportedToken,
                    "compressed tokens are not supported",
                ),
                RedeemParamsError::EarlierProtocol(settings) => ApiError::new(
                    ErrorCode::UnsupportedToken,
                    redemption::earlier_protocol_detail(&settings),
                ),
            });
        Ok(redemption::redeem(&self.app, caller, params).await?)
    }
}

/// The methods each JSON-RPC route serves, with `rpc.discover` answering their OpenRPC
/// document.
#[derive(Clone, Debug)]
pub struct Modules {
    /// `/rpc`: every method.
    pub all: Methods,
    /// `/api/redeem`: `redeem`; `issue` answers -32040.
    pub redeem_only: Methods,
}

impl Modules {
    pub fn new(app: Arc<App>) -> Modules {
        let rpc = Rpc { app };
        let mut all = rpc.clone().into_rpc();
        let mut redeem_only = rpc.into_rpc();
        redeem_only.remove_method(ISSUE);
        let errors: Vec<(i32, &str)> = ErrorCode::ALL
            .iter()
            .map(|c| (c.code(), c.meaning()))
            .collect();
        for (module, methods) in [(&mut all, &METHODS[..]), (&mut redeem_only, &[REDEEM][..])] {
            let document = openrpc(methods, &errors);
            // The names are the trait's, which never include the discovery method.
            let _ = module.register_method(DISCOVER, move |_, _, _| document.clone());
        }
        // Registering a name the module just gave up cannot fail.
        let _ = redeem_only.register_method(ISSUE, |_, _, _| {
            Err::<(), ErrorObjectOwned>(
                ApiError::new(
                    ErrorCode::IssueAtRedemptionRoute,
                    "issue is not served at the redemption route; use /rpc",
                )
                .into(),
            )
        });
        Modules {
            all: all.into(),
            redeem_only: redeem_only.into(),
        }
    }
}
