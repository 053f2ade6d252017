// Types for the parts of bench/size.mjs the tests use (tests/bindings/size.test.ts).

/** One bundle the size benchmark measures. */
export interface SizeEntry {
  id?: string
  lib: string
  entry: string
  external: string[]
  note: string
}

/** The entries measured, auth-machine's and its peers'. */
export const SIZE_ENTRIES: SizeEntry[]

/** Bundles one entry and measures it; `code` is the minified bundle. */
export function measure(entry: SizeEntry | undefined): Promise<{
  minified: number
  gzipped: number
  modules: { path: string; bytes: number }[]
  imports: string[]
  code: string
}>
