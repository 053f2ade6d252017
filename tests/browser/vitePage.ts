import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { extname, join, resolve, sep } from 'node:path'
import { build, type PluginOption } from 'vite'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
}

/** A fixture app built for production and served on loopback. */
export interface VitePage {
  url: string
  close(): Promise<void>
}

/**
 * Builds the app in `root` (an `index.html` and its modules) with Vite's JS API, as an app
 * would ship it, and serves the output from 127.0.0.1.
 */
export async function buildVitePage(root: string, plugins: PluginOption[]): Promise<VitePage> {
  const outDir = await mkdtemp(join(tmpdir(), 'auth-machine-page-'))
  await build({
    root,
    configFile: false,
    logLevel: 'warn',
    plugins,
    build: { outDir, emptyOutDir: true, chunkSizeWarningLimit: 4096 },
  })
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://pages').pathname
    const file = resolve(outDir, `.${path === '/' ? '/index.html' : path}`)
    if (!file.startsWith(outDir + sep)) return void res.writeHead(404).end()
    try {
      const body = await readFile(file)
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' })
      res.end(body)
    } catch {
      res.writeHead(404).end()
    }
  })
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections()
      await new Promise<void>((done) => server.close(() => done()))
      await rm(outDir, { recursive: true, force: true })
    },
  }
}
