// Starts what `npm start` shows: the built-in token server and the visualizer page on one
// origin. The page's requests to /auth, /api, /__control and /public are passed through to the
// token server, so the client's default `attachTo` (the page's origin) applies unchanged.
//
// By default the page is built once with Vite's JS API into a temporary folder and served as
// static files: no file watchers, no on-demand dependency optimisation, works offline. With
// `dev: true` (VISUALIZER_DEV=1) Vite's dev server runs in middleware mode instead, with hot
// reload for work on the visualizer itself.
//
// The page imports only the public entry points ('auth-machine', 'auth-machine/machine',
// 'auth-machine/react'); Vite aliases them to the TypeScript sources in src/ and machines/,
// so the page always shows the code in this checkout, built or not.

import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { Agent, createServer, request } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, extname, join, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolve(here, '..')

/** Defaults for a live demo: short lifetimes so refreshes happen while you watch. */
export const VISUALIZER_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: 5173,
  strictPort: false,
  authPort: 0,
  accessTokenTtl: 30,
  refreshTokenTtl: 7 * 24 * 60 * 60,
  refreshMargin: 5000,
  refreshTimeout: 4000,
  retry: Object.freeze({ retries: 3, baseDelay: 1000, maxDelay: 8000 }),
  dev: false,
})

function numberFrom(env, name, fallback, { min = 0, integer = false } = {}) {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new Error(`${name} must be a${integer ? 'n integer' : ' number'} >= ${min}; got "${raw}"`)
  }
  return value
}

/** Options from environment variables (see visualizer/README.md for the list). */
export function optionsFromEnv(env = process.env) {
  const d = VISUALIZER_DEFAULTS
  const port = numberFrom(env, 'PORT', d.port, { integer: true })
  return {
    host: env.HOST || d.host,
    port,
    strictPort: env.PORT !== undefined && env.PORT !== '',
    authPort: numberFrom(env, 'AUTH_SERVER_PORT', d.authPort, { integer: true }),
    accessTokenTtl: numberFrom(env, 'ACCESS_TOKEN_TTL', d.accessTokenTtl, { min: 1 }),
    refreshTokenTtl: numberFrom(env, 'REFRESH_TOKEN_TTL', d.refreshTokenTtl, { min: 1 }),
    refreshMargin: numberFrom(env, 'REFRESH_MARGIN', d.refreshMargin),
    refreshTimeout: numberFrom(env, 'REFRESH_TIMEOUT', d.refreshTimeout, { min: 1 }),
    retry: {
      ...d.retry,
      retries: numberFrom(env, 'REFRESH_RETRIES', d.retry.retries, { integer: true }),
    },
    dev: env.VISUALIZER_DEV === '1' || env.VISUALIZER_DEV === 'true',
  }
}

/** Puts the page's settings into index.html as `window.__AUTH_VISUALIZER__`. */
function injectSettings(settings) {
  // `<` escaped so no value can close the script element.
  const json = JSON.stringify(settings).replace(/</g, '\\u003c')
  return {
    name: 'auth-visualizer-settings',
    transformIndexHtml: () => [
      { tag: 'script', children: `window.__AUTH_VISUALIZER__ = ${json}`, injectTo: 'head-prepend' },
    ],
  }
}

async function viteConfig(settings) {
  const { default: react } = await import('@vitejs/plugin-react')
  return {
    root: here,
    configFile: false,
    envDir: false,
    clearScreen: false,
    logLevel: 'warn',
    plugins: [react(), injectSettings(settings)],
    resolve: {
      alias: [
        { find: /^auth-machine$/, replacement: join(repo, 'src/index.ts') },
        { find: /^auth-machine\/machine$/, replacement: join(repo, 'machines/index.ts') },
        { find: /^auth-machine\/react$/, replacement: join(repo, 'src/react/index.ts') },
      ],
    },
  }
}

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
}

function serveStatic(root) {
  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end()
      return
    }
    let path
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://page').pathname)
    } catch {
      res.writeHead(400).end()
      return
    }
    const file = resolve(root, `.${path.endsWith('/') ? `${path}index.html` : path}`)
    if (!file.startsWith(root + sep)) {
      res.writeHead(404).end()
      return
    }
    let body
    try {
      body = await readFile(file)
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found')
      return
    }
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
    })
    res.end(req.method === 'HEAD' ? undefined : body)
  }
}

const PROXIED = /^\/(?:auth|api|__control)(?:[/?]|$)|^\/public(?:\?|$)/

// Hop-by-hop: they describe one connection, not the message, and are not passed on.
const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding']

function endToEnd(headers) {
  const copy = { ...headers }
  for (const name of HOP_BY_HOP) delete copy[name]
  return copy
}

function proxyTo(target, agent) {
  const { hostname, port } = new URL(target)
  return (req, res) => {
    const headers = { ...endToEnd(req.headers), host: `${hostname}:${port}` }
    const upstream = request(
      { hostname, port, method: req.method, path: req.url, headers, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers))
        answer.pipe(res)
      },
    )
    // The token server dropped the connection (the 'reset' fault) or is gone: so does this
    // one, and the browser sees a network error, as it would without the pass-through.
    upstream.on('error', () => {
      if (res.headersSent) res.destroy()
      else req.socket.destroy()
    })
    // The browser gave up (an aborted refresh, a closed tab): so does the upstream request.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy()
    })
    req.pipe(upstream)
  }
}

function listen(server, port, host, strictPort) {
  return new Promise((resolveListen, reject) => {
    let attempt = port
    const tryListen = () => {
      const onError = (error) => {
        server.off('listening', onListening)
        if (error.code === 'EADDRINUSE' && !strictPort && port !== 0 && attempt < port + 20) {
          attempt += 1
          tryListen()
        } else {
          reject(error)
        }
      }
      const onListening = () => {
        server.off('error', onError)
        resolveListen(server.address().port)
      }
      server.once('error', onError)
      server.once('listening', onListening)
      server.listen(attempt, host)
    }
    tryListen()
  })
}

/**
 * Starts the token server and serves the visualizer. Resolves once the page can be loaded.
 * Options default to {@link VISUALIZER_DEFAULTS}; `createAuthServer` defaults to
 * `createTestAuthServer` from the built 'auth-machine/testing'.
 */
export async function startVisualizer(options = {}) {
  const o = { ...VISUALIZER_DEFAULTS, ...options }
  const createAuthServer =
    o.createAuthServer ?? (await import('auth-machine/testing')).createTestAuthServer
  const cleanups = []
  const runCleanups = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup()
      } catch {
        // Keep closing the rest.
      }
    }
  }
  try {
    const authServer = await createAuthServer({
      accessTokenTtl: o.accessTokenTtl,
      refreshTokenTtl: o.refreshTokenTtl,
      port: o.authPort,
    })
    cleanups.push(() => authServer.close())
    const settings = {
      serverUrl: authServer.url,
      accessTokenTtl: o.accessTokenTtl,
      refreshMargin: o.refreshMargin,
      refreshTimeout: o.refreshTimeout,
      retry: o.retry,
    }
    const agent = new Agent({ keepAlive: true })
    cleanups.push(() => agent.destroy())
    const proxy = proxyTo(authServer.url, agent)
    const server = createServer()
    cleanups.push(
      () =>
        new Promise((done) => {
          server.closeAllConnections()
          server.close(() => done())
        }),
    )
    const vite = await import('vite')
    const config = await viteConfig(settings)
    let page
    if (o.dev) {
      const dev = await vite.createServer({
        ...config,
        appType: 'spa',
        server: { middlewareMode: true, hmr: { server } },
      })
      cleanups.push(() => dev.close())
      page = (req, res) =>
        dev.middlewares(req, res, () => res.writeHead(404, { 'content-type': 'text/plain' }).end())
    } else {
      const outDir = await mkdtemp(join(tmpdir(), 'auth-machine-visualizer-'))
      cleanups.push(() => rm(outDir, { recursive: true, force: true }))
      await vite.build({
        ...config,
        build: {
          outDir,
          emptyOutDir: true,
          chunkSizeWarningLimit: 4096,
          reportCompressedSize: false,
        },
      })
      page = serveStatic(outDir)
    }
    server.on('request', (req, res) => {
      // One request per connection. On a reused keep-alive connection that is reset before
      // any answer, Chromium sends the request again by itself, POST included: the token
      // server saw two refresh calls for one attempt of the client, and the page never saw
      // the `reset` faults. On a fresh connection the browser reports the error to the page.
      res.setHeader('connection', 'close')
      if (PROXIED.test(req.url ?? '')) proxy(req, res)
      else void page(req, res)
    })
    const port = await listen(server, o.port, o.host, o.strictPort)
    const shownHost = o.host === '0.0.0.0' || o.host === '::' ? 'localhost' : o.host
    const url = `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}/`
    let closing
    return {
      url,
      authServer,
      settings,
      close: () => {
        closing ??= runCleanups()
        return closing
      },
    }
  } catch (error) {
    await runCleanups()
    throw error
  }
}
