//! AWS IoT Core's lifecycle events (reference §8): why connections end.

/// Why a connection ended, as AWS names it in `disconnectReason` (lifecycle events and
/// GetConnection).
///
/// | reason | when |
/// |---|---|
/// | `CLIENT_INITIATED_DISCONNECT` | the client sent DISCONNECT |
/// | `CONNECTION_LOST` | the stream ended or failed without a DISCONNECT (a WebSocket close frame included: the WebSocket bridge ends the stream alike for both) |
/// | `MQTT_KEEP_ALIVE_TIMEOUT` | nothing arrived within 1.5 keep-alive periods |
/// | `CLIENT_ERROR` | a protocol error: malformed or oversize packet, second CONNECT, invalid topic, … |
/// | `DUPLICATE_CLIENTID` | a new connection with the same client id took the session over |
/// | `AUTH_ERROR` | the certificate was revoked or deactivated, or the policies stopped allowing `iot:Connect`, while connected |
/// | `FORBIDDEN_ACCESS` | `--compat aws`: a 3.1.1 PUBLISH or SUBSCRIBE the policies deny closes the connection |
/// | `THROTTLED` | more unacknowledged inbound QoS 1/2 messages than the receive maximum (AWS's quota of 100 in flight) |
/// | `SERVER_INITIATED_DISCONNECT` | the server shuts down |
/// | `SERVER_ERROR` | a durable write failed |
/// | `API_INITIATED_DISCONNECT` | the DeleteConnection API ([`crate::Broker::delete_connection`]) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DisconnectReason {
    ClientInitiated,
    ConnectionLost,
    KeepAliveTimeout,
    ClientError,
    DuplicateClientId,
    AuthError,
    ForbiddenAccess,
    Throttled,
    ServerInitiated,
    ServerError,
    ApiInitiated,
}

impl DisconnectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ClientInitiated => "CLIENT_INITIATED_DISCONNECT",
            DisconnectReason::ConnectionLost => "CONNECTION_LOST",
            DisconnectReason::KeepAliveTimeout => "MQTT_KEEP_ALIVE_TIMEOUT",
            DisconnectReason::ClientError => "CLIENT_ERROR",
            DisconnectReason::DuplicateClientId => "DUPLICATE_CLIENTID",
            DisconnectReason::AuthError => "AUTH_ERROR",
            DisconnectReason::ForbiddenAccess => "FORBIDDEN_ACCESS",
            DisconnectReason::Throttled => "THROTTLED",
            DisconnectReason::ServerInitiated => "SERVER_INITIATED_DISCONNECT",
            DisconnectReason::ServerError => "SERVER_ERROR",
            DisconnectReason::ApiInitiated => "API_INITIATED_DISCONNECT",
        }
    }

    /// Why a connection the server closed on request (a [`crate::session::Kick`]) ended,
    /// from the DISCONNECT reason code of the request.
    pub fn of_kick(code: u8) -> DisconnectReason {
        use ferrocore_mqtt::reason;
        match code {
            reason::SESSION_TAKEN_OVER => DisconnectReason::DuplicateClientId,
            reason::NOT_AUTHORIZED => DisconnectReason::AuthError,
            reason::ADMINISTRATIVE_ACTION => DisconnectReason::ApiInitiated,
            _ => DisconnectReason::ServerInitiated,
        }
    }
}
