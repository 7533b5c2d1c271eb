// Where the two ports are by default (docs/protocol.md): the server listens
// there, and clients and the command line look there, unless told otherwise.

/** The write port: 0xBEEF, the original countd's. */
export const DEFAULT_WRITE_PORT = 48879;
/** The read port: the one after it. */
export const DEFAULT_READ_PORT = 48880;
/**
 * The default listen address, and the address clients connect to: loopback
 * only. Listening on every interface is the operator's explicit choice.
 */
export const DEFAULT_HOST = '127.0.0.1';
