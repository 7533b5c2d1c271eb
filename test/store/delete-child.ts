// Child process of the kill -9 keyspace-delete test (delete-crash.test.ts):
// opens the store at argv[2], deletes keyspace `victim` in one apply, then
// waits for the paced background clear (lib/store/collect.ts). Prints
// "opened", "deleted" once the delete is committed and "cleared" once every
// record is gone. The cleared ranges are compacted whatever their size (the
// store's default leaves ranges this small to LevelDB), so that kills land in
// compactions too. The parent kills it with SIGKILL at random moments.

import { DEFAULT_FIELD_SIZES } from '../../lib/protocol/fields.js';
import { IncrementBatch, Store } from '../../lib/store/store.js';

const store = await Store.open({ location: process.argv[2]!, sizes: DEFAULT_FIELD_SIZES });
process.stdout.write('opened\n');
const state = (store as unknown as { state: { clearPace: { compactMinBytes: number } } }).state;
state.clearPace = { ...state.clearPace, compactMinBytes: 1 };
const drop = new IncrementBatch();
drop.deleteKeyspace(Buffer.from('victim'));
await store.apply(drop);
process.stdout.write('deleted\n');
await (store as unknown as { state: { collecting: Promise<void> } }).state.collecting;
process.stdout.write('cleared\n');
await store.close();
