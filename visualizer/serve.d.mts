import type { TestAuthServer, TestAuthServerOptions } from '../src/testing/index.js'

/** The refresh retry policy handed to the page's client. */
export interface VisualizerRetry {
  retries: number
  baseDelay: number
  maxDelay: number
}

/** Options of {@link startVisualizer}; every field has a default in {@link VISUALIZER_DEFAULTS}. */
export interface VisualizerOptions {
  /** Interface to listen on. Default `127.0.0.1` (the token server is for testing: keep it local). */
  host?: string
  /** Port of the page; `0` picks a free one. Default 5173, or the next free one unless `strictPort`. */
  port?: number
  /** Fail instead of trying the next port when `port` is taken. */
  strictPort?: boolean
  /** Port of the token server itself, on 127.0.0.1. Default 0: any free port. */
  authPort?: number
  /** Access token lifetime in seconds. Default 30. */
  accessTokenTtl?: number
  /** Refresh token lifetime in seconds. Default 7 days. */
  refreshTokenTtl?: number
  /** The page client's `refreshMargin` in ms. Default 5000. */
  refreshMargin?: number
  /** The page client's `refreshTimeout` in ms. Default 4000. */
  refreshTimeout?: number
  /** The page client's `retry` policy. */
  retry?: VisualizerRetry
  /** Vite's dev server (hot reload) instead of a one-off build. Default false. */
  dev?: boolean
  /** Starts the token server. Default: `createTestAuthServer` from 'auth-machine/testing'. */
  createAuthServer?: (options: TestAuthServerOptions) => Promise<TestAuthServer>
}

/** The settings the page receives as `window.__AUTH_VISUALIZER__`. */
export interface VisualizerSettings {
  serverUrl: string
  accessTokenTtl: number
  refreshMargin: number
  refreshTimeout: number
  retry: VisualizerRetry
}

/** A running visualizer. */
export interface Visualizer {
  /** The page, e.g. `http://127.0.0.1:5173/`. */
  url: string
  /** The token server behind the page, for counters, holds and `waitFor` in tests. */
  authServer: TestAuthServer
  settings: VisualizerSettings
  /** Stops the page server, Vite and the token server, and removes the build. Idempotent. */
  close(): Promise<void>
}

export declare const VISUALIZER_DEFAULTS: Readonly<
  Required<Omit<VisualizerOptions, 'createAuthServer'>>
>

/** Options from PORT, HOST, AUTH_SERVER_PORT, ACCESS_TOKEN_TTL, REFRESH_TOKEN_TTL, REFRESH_MARGIN, REFRESH_TIMEOUT, REFRESH_RETRIES, VISUALIZER_DEV. */
export declare function optionsFromEnv(env?: Record<string, string | undefined>): VisualizerOptions

/** Starts the token server and serves the visualizer; resolves once the page can be loaded. */
export declare function startVisualizer(options?: VisualizerOptions): Promise<Visualizer>
