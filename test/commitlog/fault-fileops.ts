// Moved to test/harness/fault-fileops.ts (shared by the commit-log, crash and
// hostile tests); re-exported here so the commit-log tests keep their import.
export * from '../harness/fault-fileops.js';
