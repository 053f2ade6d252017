import type { Browser, BrowserContext, Page } from 'playwright-core'
import { createTestAuthServer, type TestAuthServer } from '../../../src/testing/index.js'
import { launchChromium } from '../chromium.js'
import { type FileServer, startPageServer } from '../pageServer.js'

export interface ReviewTab {
  refreshCalls: number
  warnings: string[]
  posted: { channel: string; message: unknown; hasCryptoKey: boolean }[]
  received: { channel: string; type?: string; reason?: string; sessionId?: string }[]
  /** The page's client, for what the helpers do not cover. */
  auth: { dpop: { keyPair(): Promise<CryptoKeyPair> } }
  state(): string
  fullState(): string
  token(): string | null
  sessionId(): string | null
  block(on: boolean): void
  signInTokens(): Promise<unknown>
  commit(tokens: unknown): void
  login(): Promise<void>
  tryLogin(): Promise<{ ok: boolean; error?: { name: string; code?: string; message?: string } }>
  logout(): Promise<void>
  key(): Promise<{ jkt: string; extractable: boolean }>
  fire(n: number): Promise<{ ok: number; errors: string[] }>
  fireUrl(
    url: string,
  ): Promise<{ ok: boolean; data?: unknown; error?: { name: string; code?: string } }>
  idbDump(): Promise<
    {
      key: string
      sessionId?: string
      kind?: string
      privateExtractable?: boolean
      json?: string
    }[]
  >
  localStorageDump(): Record<string, string>
}
declare global {
  interface Window {
    review: ReviewTab
    reviewReady?: boolean | 'failed'
  }
}

export type Transport = 'axios' | 'fetch'

/** One browser and page server for a test file; a fresh profile and token server per test. */
export class Harness {
  browser!: Browser
  pages!: FileServer
  server!: TestAuthServer
  context!: BrowserContext
  transport: Transport = 'fetch'
  errors: Error[] = []

  /** `cors`: the review page server (CORS, Clear-Site-Data route) instead of the suite's. */
  async start(pageServer: 'suite' | 'review' = 'suite') {
    this.browser = await launchChromium()
    this.pages = pageServer === 'review' ? await startCorsPageServer() : await startPageServer()
  }
  async stop() {
    await this.browser?.close()
    await this.pages?.close()
  }
  async fresh(
    transport: Transport,
    serverOptions: Parameters<typeof createTestAuthServer>[0] = { dpop: { nonce: 'both' } },
  ) {
    this.transport = transport
    this.errors = []
    this.server = await createTestAuthServer(serverOptions)
    this.context = await this.browser.newContext()
  }
  async cleanup() {
    await this.context?.close().catch(() => undefined)
    await this.server?.close().catch(() => undefined)
  }

  url(storage = 'memory', query = '&dpop=1') {
    return `${this.pages.url}/tab.html?api=${encodeURIComponent(this.server.url)}&storage=${storage}&transport=${this.transport}${query}`
  }

  /** Opens a review tab and waits until its client is ready (`timeout` ms at most). */
  async open(storage = 'memory', query = '&dpop=1', timeout = 15_000): Promise<Page> {
    const page = await this.context.newPage()
    page.on('pageerror', (error) => this.errors.push(error))
    await page.goto(this.url(storage, query))
    await page.waitForFunction(() => window.reviewReady === true, undefined, { timeout })
    return page
  }

  async openMany(count: number, storage = 'memory', query = '&dpop=1') {
    const tabs: Page[] = []
    for (let i = 0; i < count; i += 1) tabs.push(await this.open(storage, query))
    return tabs
  }

  /** A page of the same origin running nothing: for raw IndexedDB work. */
  async blank(): Promise<Page> {
    const page = await this.context.newPage()
    await page.goto(`${this.pages.url}/review-blank.html`)
    return page
  }
}

export const untilState = (page: Page, state: string, timeout = 15_000) =>
  page.waitForFunction((s) => window.review.state() === s, state, { timeout })

export async function signInAll(tabs: Page[]) {
  await tabs[0]?.evaluate(() => window.review.login())
  await Promise.all(tabs.map((tab) => untilState(tab, 'authenticated')))
}

/**
 * Holds a read-write transaction on the shared 'records' store in `page`, so every IndexedDB
 * write of the library (all tabs) queues behind it until `release()`.
 */
export async function holdRecordsStore(page: Page) {
  await page.evaluate(
    () =>
      new Promise<void>((resolve, reject) => {
        const req = indexedDB.open('auth-machine', 1)
        req.onupgradeneeded = () => req.result.createObjectStore('records')
        req.onerror = () => reject(req.error)
        req.onsuccess = () => {
          const db = req.result
          const w = window as unknown as { releaseHold?: boolean; holding?: boolean }
          w.releaseHold = false
          const tx = db.transaction('records', 'readwrite')
          const store = tx.objectStore('records')
          const spin = () => {
            if (w.releaseHold) return
            store.get('__hold__').onsuccess = spin
          }
          tx.oncomplete = () => {
            w.holding = false
            db.close()
          }
          w.holding = true
          spin()
          resolve()
        }
      }),
  )
  return {
    release: async () => {
      await page.evaluate(() => {
        ;(window as unknown as { releaseHold: boolean }).releaseHold = true
      })
      await page.waitForFunction(
        () => (window as unknown as { holding: boolean }).holding === false,
      )
    },
  }
}

/**
 * The page server's files, with `access-control-allow-origin: *`, so that a sandboxed iframe
 * (an opaque origin, whose module scripts are CORS requests) can load the built library.
 */
export function startCorsPageServer(): Promise<FileServer> {
  return startPageServer({
    headers: { 'access-control-allow-origin': '*' },
    routes: {
      // What a server's logout endpoint may answer: wipe this origin's storage in every tab.
      '/__clear-site-data': (res) => {
        res
          .writeHead(200, { 'clear-site-data': '"storage"', 'content-type': 'text/plain' })
          .end('cleared')
      },
    },
  })
}

/** The srcdoc of a sandboxed (opaque-origin) iframe that runs tab.js with `query`. */
export function sandboxedTabSrcdoc(base: string, query: string): string {
  return `<!doctype html><html><head><meta charset="utf-8">
<script type="importmap">{"imports":{"xstate":"${base}/node_modules/xstate/dist/xstate.esm.js","axios":"${base}/node_modules/axios/dist/esm/axios.js"}}</script>
<script>window.REVIEW_QUERY = ${JSON.stringify(query)}; window.addEventListener('error', (e) => { window.loadError = String(e.message) })</script>
<script type="module" src="${base}/tab.js"></script>
</head><body><p id="state">loading</p></body></html>`
}

/**
 * Whether `promise` settles within `ms`: a bound on a wait that must end, never a sleep for
 * synchronisation. Chosen above the library's own stated bounds (3 s storage, 5 s refresh).
 */
export async function settlesWithin<T>(
  promise: Promise<T>,
  ms: number,
): Promise<{ settled: true; value: T } | { settled: false }> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<{ settled: false }>((resolve) => {
    timer = setTimeout(() => resolve({ settled: false }), ms)
  })
  try {
    return await Promise.race([
      promise.then((value) => ({ settled: true as const, value })),
      timeout,
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** A bare HTTP server on 127.0.0.1 with permissive CORS (DPoP and Authorization allowed). */
export async function startOtherOrigin(
  handle: (
    req: import('node:http').IncomingMessage,
    res: import('node:http').ServerResponse,
  ) => void,
) {
  const { createServer } = await import('node:http')
  const server = createServer((req, res) => {
    res.setHeader('access-control-allow-origin', req.headers.origin ?? '*')
    res.setHeader('access-control-allow-headers', 'authorization, dpop, content-type')
    res.setHeader('access-control-allow-methods', 'GET, POST')
    res.setHeader('access-control-expose-headers', 'dpop-nonce, www-authenticate')
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end()
      return
    }
    handle(req, res)
  })
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections()
        server.close(() => done())
      }),
  }
}

/** Blocks `page`'s main thread (a synchronous XHR) until `hold` on `path` is released. */
export function blockMainThread(page: import('playwright-core').Page, url: string) {
  return page.evaluate((u) => {
    const xhr = new XMLHttpRequest()
    xhr.open('GET', u, false)
    xhr.send()
    return xhr.status
  }, url)
}
