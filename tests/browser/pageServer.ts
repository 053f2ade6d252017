import { createReadStream, existsSync, statSync } from 'node:fs'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { extname, join, normalize, resolve, sep } from 'node:path'

const root = resolve(import.meta.dirname, '../..')

/** URL prefix → folder. Only these are served: the built library, its peers, the pages. */
const MOUNTS: Record<string, string> = {
  '/dist/': join(root, 'dist'),
  '/node_modules/xstate/': join(root, 'node_modules/xstate'),
  '/node_modules/axios/': join(root, 'node_modules/axios'),
  '/': join(root, 'tests/browser/pages'),
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
}

/** A folder served over HTTP on loopback. */
export interface FileServer {
  url: string
  close(): Promise<void>
}

/** What a file server adds to the files: headers on every answer, routes of its own. */
export interface ServeOptions {
  headers?: Record<string, string>
  routes?: Record<string, (res: ServerResponse) => void>
}

/** Serves the browser test pages and the built library on 127.0.0.1. */
export async function startPageServer(options: ServeOptions = {}): Promise<FileServer> {
  if (!existsSync(join(root, 'dist/src/index.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first (`npm test` does).')
  }
  return serveFiles(MOUNTS, options)
}

/**
 * Serves files from 127.0.0.1 by URL prefix → folder (`'/'` for the rest), nothing outside
 * those folders; a folder's `index.html` for its bare prefix.
 */
export async function serveFiles(
  mounts: Record<string, string>,
  options: ServeOptions = {},
): Promise<FileServer> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)
    for (const [name, value] of Object.entries(options.headers ?? {})) res.setHeader(name, value)
    const route = options.routes?.[path]
    if (route) return route(res)
    const prefix = Object.keys(mounts).find((p) => path.startsWith(p)) ?? '/'
    const base = mounts[prefix] as string
    const file = normalize(join(base, path.slice(prefix.length) || 'index.html'))
    if (!file.startsWith(base + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' })
    createReadStream(file).pipe(res)
  })
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((done) => {
        server.closeAllConnections()
        server.close(() => done())
      }),
  }
}
