// A pipelined connection to the read port (docs/protocol.md section 2 and
// docs/read-protocol-extensions.md). Requests are encoded and responses
// decoded by the shared codecs in lib/protocol/; this module pairs each
// response with the call that asked for it. A connection stays plain until
// its first extension request, which it precedes with a hello (pipelined:
// nothing waits for the hello's answer; a server without the extensions
// answers it n = -1 and closes, and the calls behind it fail with a clear error).

import { CountdError, ErrorCodes } from '../errors.js';
import { FieldSizes } from '../protocol/fields.js';
import { ReadRequestInput, VERSION_2_OPS, type ReadOpName, encodeReadRequest, isExtensionOp } from '../protocol/read-request.js';
import { ReadResponse, ReadResponseDecoder } from '../protocol/read-response.js';
import { Connection, Endpoint } from './connection.js';
import { Pending } from './pending.js';

export class ReadConnection extends Connection<Pending<ReadResponse>> {
  readonly #sizes: FieldSizes;
  readonly #decoder: ReadResponseDecoder;
  /** A hello was sent on this connection. */
  #extended = false;
  /** Set when the server refused the hello: why the calls behind it fail. */
  #noExtensions: CountdError | undefined;
  /** The extension version the server answered to the hello (0 until then). */
  #version = 0n;

  constructor(endpoint: Endpoint, sizes: FieldSizes) {
    super(endpoint, 'read');
    this.#sizes = sizes;
    this.#decoder = new ReadResponseDecoder(sizes);
  }

  /**
   * Send one request; resolves with its response when the status is ok,
   * rejects with COUNTD_REJECTED (n = -1: the server then closes the
   * connection) or COUNTD_PAGE_TOO_LARGE (n = -2).
   */
  request(req: ReadRequestInput): Promise<ReadResponse> {
    const bytes = encodeReadRequest(req, this.#sizes); // validates: throws before anything is queued
    const ago = 'ago' in req ? (req.ago ?? 0) : 0;
    if ((isExtensionOp(req.op) || ago > 0) && !this.#extended) this.#hello();
    return new Promise<ReadResponse>((resolve, reject) => {
      this.#decoder.expect(req.op);
      this.enqueue(bytes, { resolve, reject: ago > 0 ? (err) => reject(this.#periodError(err, req, ago)) : reject });
    });
  }

  /** A request for a period (`ago`) failed: say why in its terms. */
  #periodError(err: Error, req: ReadRequestInput, ago: number): Error {
    if (!(err instanceof CountdError)) return err;
    const keyspace = 'keyspace' in req ? Buffer.from(req.keyspace).toString('utf8') : '';
    if (err.code === ErrorCodes.INVALID_ARGUMENT) {
      return new CountdError(ErrorCodes.INVALID_ARGUMENT, `keyspace ${keyspace} has no period --ago ${ago}: it was not created with --window, or keeps fewer periods (--keep)`, { cause: err });
    }
    if (err.code !== ErrorCodes.REJECTED || this.#version === 0n || this.#version >= 2n) return err;
    return new CountdError(ErrorCodes.REJECTED, `the read port speaks read-protocol extensions version ${this.#version}, without periods: it cannot read ${keyspace} --ago ${ago}`, { cause: err });
  }

  #hello(): void {
    this.#extended = true;
    this.#decoder.expect('hello');
    this.enqueue(encodeReadRequest({ op: 'hello' }, this.#sizes), {
      resolve: (res) => {
        if (res.op === 'hello' && res.status === 'ok' && res.version >= 1n) {
          this.#version = res.version;
          return;
        }
        this.fail(new CountdError(ErrorCodes.CONNECTION, `the read port answered the hello with an unknown extension version`));
      },
      reject: (err) => {
        if (err instanceof CountdError && err.code === ErrorCodes.REJECTED) {
          this.#noExtensions = new CountdError(ErrorCodes.REJECTED, 'the read port does not speak the read-protocol extensions (get, rank, around, keyspaces, health): it refused the hello', { cause: err });
        }
      },
    });
  }

  protected override fail(err?: Error): void {
    super.fail(this.#noExtensions ?? err);
  }

  protected onData(chunk: Buffer): void {
    this.#decoder.push(chunk);
    for (;;) {
      const res = this.#decoder.next(); // throws COUNTD_CONNECTION on a stream no server sends: fails the connection
      if (res === undefined) break;
      const call = this.pending.shift();
      if (call === undefined) throw new CountdError(ErrorCodes.CONNECTION, 'read response with no request outstanding');
      if (res.status === 'malformed') {
        this.retire();
        call.reject(new CountdError(ErrorCodes.REJECTED, `the server rejected the ${res.op} request as malformed (n = -1)${olderServer(res.op, this.#version)}`));
      } else if (res.status === 'period-not-kept') {
        call.reject(new CountdError(ErrorCodes.INVALID_ARGUMENT, `the keyspace keeps no such period (n = -3): a windowed keyspace keeps --ago 0 to its --keep minus 1, one without --window only --ago 0`));
      } else if (res.status === 'page-too-large') {
        call.reject(
          new CountdError(ErrorCodes.PAGE_TOO_LARGE, `the ${res.op} length is above the server's page limit (n = -2)`),
        );
      } else if (res.status === 'timeout') {
        call.reject(new CountdError(ErrorCodes.TOKEN_TIMEOUT, 'the write was not applied within the timeout (the await request timed out, n = -3): the worker may be behind or stopped'));
      } else {
        call.resolve(res);
      }
    }
    if (this.pending.length === 0) this.settled();
  }
}

/** Why a server of extension version 1 (countd 0.5 and earlier) refused a dense, count or settings op ('' for another reason). */
function olderServer(op: ReadOpName, version: bigint): string {
  return VERSION_2_OPS.has(op) && version > 0n && version < 2n ? `: the read port speaks read-protocol extensions version ${version}, and ${op} needs version 2 (countd 0.6.0 or later)` : '';
}
