// The package entry of countd: `import { Client } from 'countd'`.
// The client library (lib/client/), its error type and codes, and the types
// callers meet in its answers. The server roles are run through the `countd`
// binaries, not imported.

export {
  Client,
  DEFAULT_DUMP_PAGE,
  type ClientOptions,
  type Entry,
  type KeyspaceInfo,
  type Name,
  type PeriodOption,
  type RankedEntry,
  type ProducerOptions,
  type ReadAfter,
  type WriteAck,
  type WriteOptions,
  type WriteResult,
} from './client/client.js';
export { CountdError, ErrorCodes, isCountdError, type ErrorCode } from './errors.js';
export { DEFAULT_FIELD_SIZES, type FieldSizes } from './protocol/fields.js';
export { DEFAULT_HOST, DEFAULT_READ_PORT, DEFAULT_WRITE_PORT } from './protocol/ports.js';
