// Section 5 of BENCHMARKS.md: bundle sizes, the three size goals and where the bytes are.

import { int, label, table, yes } from './reportFormat.mjs'
import { fmt } from './stats.mjs'

/** Goals in bytes, min + gzip (1 KB = 1 024 bytes). */
export const SIZE_GOALS = { core: 5 * 1024, adapter: 1.5 * 1024, binding: 1024 }

const kbText = (bytes) => `${Number((bytes / 1024).toFixed(2))} KB`

export function sizeSection(size, esbuild) {
  const byId = (id) => size.rows.find((row) => row.id === id)
  const core = byId('core+fetch')
  const bindings = ['react', 'vue', 'svelte'].map(byId)
  const { adapter } = size
  const adapterModules = adapter.modules.map((m) => `\`${m.path}\` ${int(m.bytes)} B`).join(', ')
  const rows = size.rows.flatMap((r) => {
    const row = [label(r.lib), `\`${r.entry}\``, int(r.minified), `**${int(r.gzipped)}**`, r.note]
    if (r.id !== 'main') return [row]
    return [
      row,
      [
        '**auth-machine** axios adapter',
        '`auth-machine` − `auth-machine/fetch`',
        int(adapter.minified),
        `**${int(adapter.gzipped)}**`,
        `the row above minus the first (both min + gzip as a whole): what the axios entry adds to the fetch entry; its modules (minified): ${adapterModules}`,
      ],
    ]
  })
  const top = size.topModules.map((m) => [
    `\`${m.path}\``,
    int(m.bytes),
    `${fmt((100 * m.bytes) / size.coreMinified, 3)} %`,
  ])
  const verdicts = {
    core: { ok: core.gzipped < SIZE_GOALS.core, bytes: core.gzipped },
    adapter: { ok: adapter.gzipped < SIZE_GOALS.adapter, bytes: adapter.gzipped },
    binding: {
      ok: bindings.every((b) => b.gzipped < SIZE_GOALS.binding),
      text: bindings.map((b) => `\`${b.entry}\` ${int(b.gzipped)} bytes`).join(', '),
    },
    axiosFree: size.axiosFree,
  }
  const body = `## 5. Size (minified + gzipped)

Each entry bundled with esbuild ${esbuild} (\`bundle\`, \`minify\`, ESM, browser platform,
es2020, metafile), peer dependencies \`external\`, then gzip level 9 (\`node:zlib\`).
auth-machine's entries are imported by package name (\`export { createAuthClient } from
'auth-machine/fetch'\`), so its \`exports\` map and \`sideEffects: false\` apply as in an app.
The axios adapter's figure is the difference between the main entry and the fetch entry, both
used that way: what an app pays for \`auth-machine\` over \`auth-machine/fetch\` (not the
adapter modules bundled alone, whose gzip would count again the vocabulary they share with the
core). Deterministic: measured once.

${table(['library', 'entry', 'minified (bytes)', 'min + gzip (bytes)', 'what is included'], rows)}

The core + fetch bundle holds ${verdicts.axiosFree ? 'no axios code (no axios module, no import of `axios`)' : '**axios code** (an axios module or an import of `axios`)'}. Its largest
modules (bytes of minified output, from the metafile; gzip cannot be split per module):

${table(['module', 'minified bytes', 'share of the bundle'], top)}

- Goal "core + fetch under ${kbText(SIZE_GOALS.core)}": ${yes(verdicts.core.ok)} — ${int(core.gzipped)} bytes (${kbText(core.gzipped)}).
- Goal "axios adapter under ${kbText(SIZE_GOALS.adapter)}": ${yes(verdicts.adapter.ok)} — ${int(adapter.gzipped)} bytes (${kbText(adapter.gzipped)}).
- Goal "each framework binding under ${kbText(SIZE_GOALS.binding)}": ${yes(verdicts.binding.ok)} — ${verdicts.binding.text}.
`
  return { body, verdicts }
}
