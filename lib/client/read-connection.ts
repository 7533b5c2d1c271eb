// A pipelined connection to the read port (docs/protocol.md section 2 and
// docs/read-protocol-extensions.md). Requests are encoded and responses
// decoded by the shared codecs in lib/protocol/; this module pairs each
// response with the call that asked for it. A connection stays plain until
// its first extension request, which it precedes with a hello (pipelined:
// nothing waits for the hello's answer; a server without the extensions
// answers it n = -1 and closes, and the calls behind it fail with a clear error).

import { CountdError, ErrorCodes } from '../errors.js';
import { FieldSizes } from '../protocol/fields.js';
import { ReadRequestInput, VERSION_2_OPS, encodeReadRequest, isExtensionOp } from '../protocol/read-request.js';
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
    if (isExtensionOp(req.op) && !this.#extended) this.#hello();
    return new Promise<ReadResponse>((resolve, reject) => {
      this.#decoder.expect(req.op);
      this.enqueue(bytes, { resolve, reject });
    });
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
        // A server of extension version 1 (countd 0.5 and earlier) has no dense, count or settings op.
        const older = VERSION_2_OPS.has(res.op) && this.#version > 0n && this.#version < 2n ? `: the read port speaks read-protocol extensions version ${this.#version}, and ${res.op} needs version 2 (countd 0.6.0 or later)` : '';
        call.reject(new CountdError(ErrorCodes.REJECTED, `the server rejected the ${res.op} request as malformed (n = -1)${older}`));
      } else if (res.status === 'page-too-large') {
        call.reject(
          new CountdError(ErrorCodes.PAGE_TOO_LARGE, `the ${res.op} length is above the server's page limit (n = -2)`),
        );
      } else {
        call.resolve(res);
      }
    }
    if (this.pending.length === 0) this.settled();
  }
}
