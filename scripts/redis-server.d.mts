/**
 * A real redis-server (the Debian package) for tests, benchmarks and demos: its own process
 * on a free port of 127.0.0.1, no persistence, never the system service and never a mock.
 */
export interface RedisServer {
  readonly port: number
  readonly url: string
  /** SIGKILLs the server (as a crash); resolves when the process has exited. */
  kill(): Promise<void>
  /** Starts it again on the same port, empty (no persistence); resolves when PING is answered. */
  restart(): Promise<void>
  /**
   * Runs one command over raw RESP and returns the parsed reply: strings, integers, arrays,
   * null. An error reply rejects.
   */
  command(args: string[]): Promise<unknown>
  /** Stops the server (SIGTERM, then SIGKILL after 2 s); idempotent. */
  stop(): Promise<void>
}

/**
 * Starts a fresh, empty redis-server on a free local port; resolves once it answers PING.
 * Throws with the install command when redis-server is not installed.
 */
export function startRedisServer(): Promise<RedisServer>
