// Benchmark 5: what each library adds to a browser bundle. The entry is bundled with
// esbuild (ESM, browser platform, minified, peer dependencies external), then gzipped
// (zlib, level 9). Deterministic, so measured once.

import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

const root = fileURLToPath(new URL('..', import.meta.url))
const pkg = (name) =>
  JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8'))

/** The entries measured: what `import … from '<name>'` resolves to in a bundler. */
export const SIZE_ENTRIES = [
  {
    lib: 'auth-machine',
    entry: 'dist/src/index.js',
    external: ['axios', 'xstate'],
    note: 'peer dependencies axios and xstate external',
  },
  {
    lib: 'auth-machine',
    entry: 'dist/src/index.js',
    external: ['axios'],
    note: 'with the parts of xstate it uses bundled in (for an app that does not use xstate yet)',
  },
  {
    lib: 'axios-auth-refresh',
    entry: 'node_modules/axios-auth-refresh/dist/index.esm.js',
    external: ['axios'],
    note: 'its `import` export; peer dependency axios external',
  },
  {
    lib: 'axios-jwt',
    entry: 'node_modules/axios-jwt/dist/index.js',
    external: ['axios', '@react-native-async-storage/async-storage'],
    note: 'its `main` (CommonJS), dependencies jwt-decode and ms bundled in; peer dependency axios external',
  },
  {
    lib: 'naive',
    entry: 'bench/naive.mjs',
    external: ['axios'],
    note: 'the recipe as written in bench/naive.mjs',
  },
]

async function measure({ entry, external }) {
  const result = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    external,
    write: false,
    logLevel: 'silent',
  })
  const code = result.outputFiles[0].contents
  return { minified: code.length, gzipped: gzipSync(code, { level: 9 }).length }
}

export async function measureSizes() {
  const rows = []
  for (const entry of SIZE_ENTRIES) rows.push({ ...entry, ...(await measure(entry)) })
  return { rows, esbuild: pkg('esbuild').version }
}
