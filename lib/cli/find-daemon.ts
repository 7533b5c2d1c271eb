// How a command finds the daemon it talks to: explicit flags (--listen,
// --write-port, --read-port) win; otherwise <data-dir>/daemon.json, written by
// `countd start` once it listens. Field sizes come from the data directory's
// meta file when there is one (a remote daemon's directory may not be local:
// then the defaults apply, as for any client).

import { DaemonRecord, readLiveDaemonRecord } from '../datadir/daemon-record.js';
import { dataDirPaths } from '../datadir/layout.js';
import { readMeta } from '../datadir/meta.js';
import { CountdError, ErrorCodes } from '../errors.js';
import { DEFAULT_FIELD_SIZES, FieldSizes } from '../protocol/fields.js';
import { DEFAULT_HOST } from '../protocol/ports.js';
import { Client, connectableHost, type ProducerOptions } from '../client/client.js';
import { type CommonArgs, type DaemonAddress, type DaemonArgs, daemonAddressOf, dataDirOf } from './options.js';

export interface DaemonTarget {
  host: string;
  port: number;
  sizes: FieldSizes;
  /** The daemon.json record, when the target came from it. */
  record?: DaemonRecord;
}

/**
 * The daemon's `which` port: from flags, else from daemon.json; undefined
 * when neither names one (no daemon runs on the data directory).
 */
export async function findDaemon(dataDir: string, address: DaemonAddress, which: 'write' | 'read'): Promise<DaemonTarget | undefined> {
  const paths = dataDirPaths(dataDir);
  const sizes = (await readMeta(paths)) ?? DEFAULT_FIELD_SIZES;
  const fieldSizes = { keyspaceSize: sizes.keyspaceSize, keySize: sizes.keySize };
  const flagPort = which === 'write' ? address.writePort : address.readPort;
  if (flagPort !== undefined) return { host: address.host ?? DEFAULT_HOST, port: flagPort, sizes: fieldSizes };
  const record = await readLiveDaemonRecord(paths);
  if (record === undefined) return undefined;
  return {
    host: address.host ?? connectableHost(record.listen),
    port: which === 'write' ? record.writePort : record.readPort,
    sizes: fieldSizes,
    record,
  };
}

/** Like findDaemon, but a missing daemon is an error (COUNTD_NOT_RUNNING). */
export async function requireDaemon(dataDir: string, address: DaemonAddress, which: 'write' | 'read'): Promise<DaemonTarget> {
  const target = await findDaemon(dataDir, address, which);
  if (target === undefined) {
    throw new CountdError(
      ErrorCodes.NOT_RUNNING,
      `no countd daemon is running on ${dataDirPaths(dataDir).root} (start one with \`countd start\`, or give --${which}-port)`,
    );
  }
  return target;
}

/** Run `body` with a client of the running daemon's write port, closed afterwards (the write commands). */
export async function withWriteClient(argv: CommonArgs & DaemonArgs, body: (client: Client) => Promise<void>, options: { read?: boolean; producer?: ProducerOptions } = {}): Promise<void> {
  const daemon = await requireDaemon(dataDirOf(argv), daemonAddressOf(argv), 'write');
  // A visible write waits on the read port for its token.
  const read = options.read === true ? await requireDaemon(dataDirOf(argv), daemonAddressOf(argv), 'read') : undefined;
  const client = new Client({ host: daemon.host, writePort: daemon.port, ...(read && { readPort: read.port }), ...daemon.sizes, ...(options.producer && { producer: options.producer }) });
  try {
    await body(client);
  } finally {
    await client.close();
  }
}
