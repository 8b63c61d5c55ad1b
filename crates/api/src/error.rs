//! AWS-shaped error responses.
//!
//! botocore reads the exception name from `x-amzn-ErrorType` (the text before any `:`), else
//! from the body's `code` / `__type`; the message from `message`. We send both the header and
//! `__type`, so the AWS CLI, boto3 and the other SDKs raise the modelled exception class.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferrocore_identity::registry::RegistryError;
use ferrocore_identity::sigv4::SigV4Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// The AWS exception name.
    pub code: &'static str,
    pub message: String,
    /// `ResourceAlreadyExistsException`'s `resourceId` and `resourceArn`.
    pub resource_id: Option<String>,
    pub resource_arn: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            message: message.into(),
            resource_id: None,
            resource_arn: None,
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "InvalidRequestException", message)
    }

    /// A 400 like every other malformed request (the SDKs then raise InvalidRequestException).
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::invalid_request(format!("The request body is larger than {limit} bytes."))
    }

    pub fn unknown_operation(method: &Method, path: &str) -> ApiError {
        ApiError::new(
            404,
            "UnknownOperationException",
            format!("No operation at {method} {path}"),
        )
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        let mut error = ApiError::new(e.http_status(), e.aws_error_code(), e.to_string());
        if let RegistryError::ResourceAlreadyExists {
            resource_id,
            resource_arn,
            ..
        } = e
        {
            error.resource_id = resource_id;
            error.resource_arn = resource_arn;
        }
        error
    }
}

impl From<SigV4Error> for ApiError {
    fn from(e: SigV4Error) -> ApiError {
        ApiError::new(e.http_status(), e.aws_error_code(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "message": self.message, "__type": self.code });
        if let Some(id) = self.resource_id {
            body["resourceId"] = id.into();
        }
        if let Some(arn) = self.resource_arn {
            body["resourceArn"] = arn.into();
        }
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert("x-amzn-errortype", HeaderValue::from_static(self.code));
        response
    }
}
