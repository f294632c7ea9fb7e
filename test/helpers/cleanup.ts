import { afterEach } from "vitest";

type Closer = () => Promise<void> | void;

/**
 * Registers things a test opens (simulators, servers, clients, folders) and closes them all
 * after each test, last opened first.
 */
export function useCleanup(): <T>(value: T, close: (value: T) => Promise<void> | void) => T {
  let closers: Closer[] = [];
  afterEach(async () => {
    const pending = closers.reverse();
    closers = [];
    for (const close of pending) await close();
  });
  return (value, close) => {
    closers.push(() => close(value));
    return value;
  };
}

/** Closes an http server and its keep-alive sockets. */
export function closeServer(server: { close(cb: () => void): void; closeAllConnections(): void }): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** The same latency for every model, no jitter: jobs finish exactly when a test says. */
export function sameLatencyForAllModels(latencyMs: number): { latencyMs: Record<string, number>; jitterMs: number } {
  return { latencyMs: { "seedream3.0": latencyMs, "flux-schnell": latencyMs, nanobanana: latencyMs, "nanobanana-pro": latencyMs }, jitterMs: 0 };
}
