// Benchmark 5: what each library adds to a browser bundle. Each entry is bundled with esbuild
// (ESM, browser platform, minified, peer dependencies external), then gzipped (zlib, level 9).
// auth-machine's entries are imported by package name, as an app imports them, so its
// `exports` map and `sideEffects: false` apply. Deterministic, so measured once.

import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

const root = fileURLToPath(new URL('..', import.meta.url))
const pkg = (name) =>
  JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8'))

/** An app's use of an entry: the client factory, which pulls in everything it needs. */
const appImport = (entry) => `export { createAuthClient } from '${entry}'`

/**
 * Every import that resolves outside `dir` and the bindings' shared module is external: a
 * binding's own bytes, with the core (which the app bundles once, for the client) left out.
 */
const bindingOnly = (name) => {
  const dirs = [name, 'bindings'].map((d) =>
    fileURLToPath(new URL(`../dist/src/${d}/`, import.meta.url)),
  )
  return onlyInside(dirs)
}

const onlyInside = (dirs) => ({
  name: 'only-inside',
  setup(build) {
    build.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === 'resolved' || args.kind === 'entry-point') return undefined
      const resolved = await build.resolve(args.path, {
        kind: args.kind,
        resolveDir: args.resolveDir,
        importer: args.importer,
        pluginData: 'resolved',
      })
      if (resolved.errors.length > 0 || dirs.some((dir) => resolved.path.startsWith(dir))) {
        return undefined
      }
      return { path: args.path, external: true }
    })
  },
})

/** The entries measured. `id` names the ones the goals and differences refer to. */
export const SIZE_ENTRIES = [
  {
    id: 'core+fetch',
    lib: 'auth-machine',
    title: '**auth-machine** core + fetch',
    entry: 'auth-machine/fetch',
    contents: appImport('auth-machine/fetch'),
    external: ['xstate'],
    note: '`createAuthClient` from `auth-machine/fetch`: the core and `auth.fetch`; xstate external',
  },
  {
    id: 'main',
    lib: 'auth-machine',
    title: '**auth-machine** main entry',
    entry: 'auth-machine',
    contents: appImport('auth-machine'),
    external: ['xstate', 'axios'],
    note: '`createAuthClient` from `auth-machine`: core, `auth.fetch` and the axios adapter; xstate and axios external',
  },
  {
    id: 'react',
    lib: 'auth-machine',
    title: '**auth-machine** React binding',
    entry: 'auth-machine/react',
    contents: `export * from 'auth-machine/react'`,
    external: ['xstate', 'axios', 'react', '@xstate/react'],
    plugins: [bindingOnly('react')],
    note: 'the React binding alone: react, @xstate/react, xstate and the core external',
  },
  {
    id: 'vue',
    lib: 'auth-machine',
    title: '**auth-machine** Vue binding',
    entry: 'auth-machine/vue',
    contents: `export * from 'auth-machine/vue'`,
    external: ['xstate', 'axios', 'vue', '@xstate/vue'],
    plugins: [bindingOnly('vue')],
    note: 'the Vue binding alone: vue, @xstate/vue, xstate and the core external',
  },
  {
    id: 'svelte',
    lib: 'auth-machine',
    title: '**auth-machine** Svelte binding',
    entry: 'auth-machine/svelte',
    contents: `export * from 'auth-machine/svelte'`,
    external: ['xstate', 'axios', 'svelte', '@xstate/svelte'],
    plugins: [bindingOnly('svelte')],
    note: 'the Svelte binding alone: svelte, @xstate/svelte, xstate and the core external',
  },
  {
    id: 'core+fetch+xstate',
    lib: 'auth-machine',
    title: '**auth-machine** core + fetch, xstate bundled',
    entry: 'auth-machine/fetch',
    contents: appImport('auth-machine/fetch'),
    external: [],
    note: 'as the first row, with the parts of xstate it uses bundled in (for an app that does not use xstate yet)',
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
  {
    lib: 'ky',
    entry: 'node_modules/ky/distribution/index.js',
    external: [],
    note: 'the whole HTTP client (a fetch wrapper, not a refresh add-on); its refresh recipe is app code of a few hundred bytes',
  },
]

/** Bundles one entry of {@link SIZE_ENTRIES} and measures it; `code` is the minified bundle. */
export async function measure({ entry, contents, external, plugins = [] }) {
  const input = contents
    ? { stdin: { contents, resolveDir: root, sourcefile: `use of ${entry}`, loader: 'js' } }
    : { entryPoints: [entry] }
  const result = await build({
    absWorkingDir: root,
    ...input,
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    external,
    plugins,
    metafile: true,
    write: false,
    logLevel: 'silent',
  })
  const code = result.outputFiles[0].contents
  const [output] = Object.values(result.metafile.outputs)
  const modules = Object.entries(output.inputs)
    .map(([path, { bytesInOutput }]) => ({ path, bytes: bytesInOutput }))
    .filter((m) => m.bytes > 0)
    .sort((a, b) => b.bytes - a.bytes)
  const imports = output.imports.map((i) => i.path)
  return {
    minified: code.length,
    gzipped: gzipSync(code, { level: 9 }).length,
    modules,
    imports,
    code: new TextDecoder().decode(code),
  }
}

/**
 * Every entry's size, and for auth-machine: the axios adapter's cost (the main entry minus
 * the fetch entry, both as an app uses them) and where the core + fetch bundle's bytes are.
 */
export async function measureSizes() {
  const rows = []
  for (const entry of SIZE_ENTRIES) rows.push({ ...entry, ...(await measure(entry)) })
  const byId = (id) => rows.find((row) => row.id === id)
  const core = byId('core+fetch')
  const main = byId('main')
  const inCore = new Set(core.modules.map((m) => m.path))
  const adapter = {
    minified: main.minified - core.minified,
    gzipped: main.gzipped - core.gzipped,
    // Modules of the main entry that the fetch entry does not have.
    modules: main.modules.filter((m) => !inCore.has(m.path)),
  }
  return {
    rows: rows.map(({ modules, imports, plugins, contents, code, ...row }) => row),
    axiosFree:
      !core.modules.some((m) => /axios/i.test(m.path)) &&
      !core.imports.some((path) => path === 'axios' || path.startsWith('axios/')),
    adapter,
    topModules: core.modules.slice(0, 8),
    coreMinified: core.minified,
    esbuild: pkg('esbuild').version,
  }
}
