import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build, type PluginOption } from 'vite'
import { type FileServer, serveFiles } from './pageServer.js'

/**
 * Builds the app in `root` (an `index.html` and its modules) with Vite's JS API, as an app
 * would ship it, and serves the output from 127.0.0.1; `close()` also removes the build.
 */
export async function buildVitePage(root: string, plugins: PluginOption[]): Promise<FileServer> {
  const outDir = await mkdtemp(join(tmpdir(), 'auth-machine-page-'))
  await build({
    root,
    configFile: false,
    logLevel: 'warn',
    plugins,
    build: { outDir, emptyOutDir: true, chunkSizeWarningLimit: 4096 },
  })
  const files = await serveFiles({ '/': outDir })
  return {
    url: files.url,
    async close() {
      await files.close()
      await rm(outDir, { recursive: true, force: true })
    },
  }
}
