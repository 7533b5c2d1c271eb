// SIGTERM and SIGINT stop a countd process gracefully (close its roles in
// order, exit 0). A second signal while stopping is logged and ignored: the
// roles bound their own shutdown time.

export function onStopSignal(stop: (signal: NodeJS.Signals) => void): () => void {
  let received = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (received) {
      process.stderr.write(`countd: ${signal} received again; still stopping\n`);
      return;
    }
    received = true;
    stop(signal);
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}
