// Settings injected by the server that serves the page (visualizer/serve.mjs), so the client
// here uses the same lifetimes the token server was started with.

/** What `startVisualizer()` tells the page. */
export interface VisualizerConfig {
  /** The token server's own URL, for display only: the page reaches it through its own origin. */
  serverUrl: string
  /** Access token lifetime in seconds, as configured on the token server. */
  accessTokenTtl: number
  /** The client's `refreshMargin`, in ms. */
  refreshMargin: number
  /** The client's `refreshTimeout`, in ms. */
  refreshTimeout: number
  /** The client's `retry` policy. */
  retry: { retries: number; baseDelay: number; maxDelay: number }
}

declare global {
  interface Window {
    __AUTH_VISUALIZER__?: Partial<VisualizerConfig>
  }
}

const defaults: VisualizerConfig = {
  serverUrl: '',
  accessTokenTtl: 30,
  refreshMargin: 5000,
  refreshTimeout: 4000,
  retry: { retries: 3, baseDelay: 1000, maxDelay: 8000 },
}

export const config: VisualizerConfig = { ...defaults, ...window.__AUTH_VISUALIZER__ }
