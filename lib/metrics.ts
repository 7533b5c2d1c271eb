// Prometheus metrics (prom-client), one registry per process. Each role
// records into its own metric names, so the supervisor of `countd start`
// can serve the concatenated text of every child process on --metrics-port.

import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export const registry = new Registry();

/** Bytes all read connections of this process hold; read when metrics are collected (kept off the request path). */
export const readBuffered = { bytes: 0 };

const latencyBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export const metrics = {
  framesAcked: new Counter({ name: 'countd_write_frames_acked_total', help: 'Write frames acknowledged with WIN', registers: [registry] }),
  framesRejected: new Counter({ name: 'countd_write_frames_rejected_total', help: 'Write frames answered BAD', registers: [registry] }),
  framesFailed: new Counter({ name: 'countd_write_frames_failed_total', help: 'Write frames answered ERR', registers: [registry] }),
  fsyncSeconds: new Histogram({ name: 'countd_write_fsync_seconds', help: 'Latency of one group commit (write + fdatasync)', buckets: latencyBuckets, registers: [registry] }),
  groupCommitFrames: new Histogram({
    name: 'countd_write_group_commit_frames',
    help: 'Frames made durable by one group commit',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192],
    registers: [registry],
  }),
  logsHandedOver: new Counter({ name: 'countd_write_logs_handed_over_total', help: 'Commit logs sealed and marked dirty', labelNames: ['reason'], registers: [registry] }),
  handoverFailures: new Counter({ name: 'countd_write_handover_failures_total', help: 'Failed attempts to hand over or release a commit log (each is retried)', registers: [registry] }),
  handoversPending: new Gauge({ name: 'countd_write_handovers_pending', help: 'Commit logs whose hand-over failed and waits for a retry', registers: [registry] }),
  framesUnanswered: new Counter({
    name: 'countd_write_frames_unanswered_total',
    help: 'Write frames whose connection was closed without an answer: their commit failed and could not be cut off, so they may be applied',
    registers: [registry],
  }),
  backlogBytes: new Gauge({ name: 'countd_write_backlog_bytes', help: 'Bytes of dirty commit logs (waiting for or being applied by a worker) plus this writer\'s logs being handed over, as flow control last saw them', registers: [registry] }),
  flowState: new Gauge({ name: 'countd_write_flow_state', help: 'The flow-control state (normal, delayed: acknowledgements held, stopped: sockets not read) is 1, the others 0', labelNames: ['state'], registers: [registry] }),
  flowStalls: new Counter({ name: 'countd_write_flow_stalls_total', help: 'Times flow control entered the delayed or the stopped state', labelNames: ['state'], registers: [registry] }),
  flowStallSeconds: new Counter({ name: 'countd_write_flow_stall_seconds_total', help: 'Seconds spent in the delayed or the stopped state (counted when the state ends)', labelNames: ['state'], registers: [registry] }),
  flowDelaySeconds: new Counter({ name: 'countd_write_flow_delay_seconds_total', help: 'Seconds batches of acknowledgements were held by flow control', registers: [registry] }),
  writeConnections: new Gauge({ name: 'countd_write_connections', help: 'Open write connections', registers: [registry] }),
  dirtyBacklogLogs: new Gauge({ name: 'countd_worker_backlog_logs', help: 'Dirty commit logs waiting to be applied', registers: [registry] }),
  quarantinedLogs: new Gauge({
    name: 'countd_worker_quarantined_logs',
    help: 'Commit logs quarantined: header not verifiable, records salvaged, kept until an operator releases them',
    registers: [registry],
  }),
  framesSalvaged: new Counter({ name: 'countd_worker_frames_salvaged_total', help: 'Frames applied from commit logs whose header could not be verified', registers: [registry] }),
  workerState: new Gauge({ name: 'countd_worker_state', help: 'The worker state (applying, failing: applies fail and are retried, stalled: the database disk is full) is 1, the others 0', labelNames: ['state'], registers: [registry] }),
  workerFailingSince: new Gauge({ name: 'countd_worker_failing_since_seconds', help: 'Unix time at which the current run of failed applies began; 0 while applying', registers: [registry] }),
  applyFailures: new Counter({ name: 'countd_worker_apply_failures_total', help: 'Applies (or database reopens) that failed, by error code', labelNames: ['code'], registers: [registry] }),
  framesApplied: new Counter({ name: 'countd_worker_frames_applied_total', help: 'Frames applied to the database', registers: [registry] }),
  logsApplied: new Counter({ name: 'countd_worker_logs_applied_total', help: 'Commit logs applied and marked clean', registers: [registry] }),
  applySeconds: new Histogram({ name: 'countd_worker_apply_seconds', help: 'Latency of applying one batch of logs', buckets: latencyBuckets, registers: [registry] }),
  readRequests: new Counter({ name: 'countd_read_requests_total', help: 'Read requests answered', labelNames: ['kind'], registers: [registry] }),
  readSeconds: new Histogram({ name: 'countd_read_request_seconds', help: 'Latency of one read request', buckets: latencyBuckets, registers: [registry] }),
  readCacheHits: new Counter({ name: 'countd_read_page_cache_hits_total', help: 'Page requests answered from the page cache', registers: [registry] }),
  rankBlockHits: new Counter({ name: 'countd_store_rank_block_cache_hits_total', help: 'Rank blocks served from the rank-block cache (pages, ranks, arounds)', registers: [registry] }),
  appliesOverlapped: new Counter({ name: 'countd_store_applies_overlapped_total', help: 'Applies prepared while the apply before them was being written', registers: [registry] }),
  rankBlockMisses: new Counter({ name: 'countd_store_rank_block_cache_misses_total', help: 'Rank blocks read from LevelDB', registers: [registry] }),
  readBufferedBytes: new Gauge({
    name: 'countd_read_buffered_bytes',
    help: 'Bytes the read connections hold: requests read ahead and answers their clients have not read yet',
    registers: [registry],
    collect() {
      this.set(readBuffered.bytes);
    },
  }),
  readConnections: new Gauge({ name: 'countd_read_connections', help: 'Open read connections', registers: [registry] }),
  childRestarts: new Counter({ name: 'countd_supervisor_child_restarts_total', help: 'Children of countd start restarted after they died', labelNames: ['child'], registers: [registry] }),
  clusterPublishSeconds: new Histogram({ name: 'countd_cluster_publish_seconds', help: 'Cluster mode: latency of one partition message until JetStream acknowledged it', buckets: latencyBuckets, registers: [registry] }),
  clusterPosition: new Gauge({ name: 'countd_cluster_partition_position', help: 'Cluster mode: stream sequence applied, per owned partition', labelNames: ['partition'], registers: [registry] }),
  clusterPending: new Gauge({ name: 'countd_cluster_partition_pending', help: 'Cluster mode: messages of an owned partition not yet delivered to its applier', labelNames: ['partition'], registers: [registry] }),
  clusterLagSeconds: new Histogram({ name: 'countd_cluster_apply_lag_seconds', help: 'Cluster mode: from a message stored in JetStream to its counts applied', buckets: latencyBuckets, registers: [registry] }),
  clusterSnapshotPosition: new Gauge({ name: 'countd_cluster_snapshot_position', help: 'Cluster mode: stream sequence of the last snapshot this node stored, per partition', labelNames: ['partition'], registers: [registry] }),
  clusterSnapshotSeconds: new Histogram({ name: 'countd_cluster_snapshot_seconds', help: 'Cluster mode: time to export and store one partition snapshot', buckets: latencyBuckets, registers: [registry] }),
  clusterRestores: new Counter({ name: 'countd_cluster_restores_total', help: 'Cluster mode: partitions restored from a snapshot when gained', registers: [registry] }),
  clusterPartitionLag: new Gauge({ name: 'countd_cluster_partition_lag_seconds', help: 'Cluster mode: age of the last message applied, per owned partition, when messages are pending (0 when caught up)', labelNames: ['partition'], registers: [registry] }),
  clusterDuplicates: new Counter({ name: 'countd_cluster_duplicates_dropped_total', help: 'Cluster mode: partition messages dropped as retries (per-writer sequence at or below the watermark)', registers: [registry] }),
};
