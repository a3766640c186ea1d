//! Wire protocol (length-prefixed postcard frames, versioned handshake) and TCP transport.
