// What every section of BENCHMARKS.md shares: who is who among the subjects, their labels,
// and the Markdown helpers.

import { AUTH_FETCH, BARE_FETCH, FETCH_SUBJECTS, KY } from './fetchSubjects.mjs'
import { fmt } from './stats.mjs'
import { AAR_NO_DEDUP, LIBRARIES } from './subjects.mjs'

/** auth-machine on each transport: the rows every goal is about. */
export const OURS = ['auth-machine', AUTH_FETCH]
/** The libraries compared against, on either transport, as their READMEs set them up. */
export const PEERS = [...LIBRARIES.filter((lib) => !OURS.includes(lib)), KY]
export const BASELINES = ['bare', BARE_FETCH]
/** The floor a subject's ratios are taken against: bare axios, or bare fetch for fetch rows. */
export const baselineOf = (lib) => (FETCH_SUBJECTS.includes(lib) ? BARE_FETCH : 'bare')
/** Every subject, in report order: the axios world, then the fetch world. */
export const ALL_SUBJECTS = ['bare', ...LIBRARIES, AAR_NO_DEDUP, ...FETCH_SUBJECTS]

const LABEL = {
  bare: 'bare axios',
  'auth-machine': '**auth-machine** (axios)',
  'axios-auth-refresh': 'axios-auth-refresh',
  'axios-jwt': 'axios-jwt',
  naive: 'naive recipe',
  [AAR_NO_DEDUP]: 'axios-auth-refresh, `deduplicateRefresh: false` ¹',
  [BARE_FETCH]: 'bare fetch',
  [AUTH_FETCH]: '**auth-machine** (`auth.fetch`)',
  [KY]: 'ky, README refresh recipe',
}
/** Short names for running text. */
const NAME = { 'auth-machine': 'auth-machine (axios)', [AUTH_FETCH]: 'auth.fetch', [KY]: 'ky' }

export const label = (lib) => LABEL[lib] ?? lib
export const nameOf = (lib) => NAME[lib] ?? LABEL[lib]?.replace(/[*¹]/g, '').trim() ?? lib
export const yes = (ok) => (ok ? '✅ met' : '❌ **missed**')
export const kb = (bytes) => bytes / 1024
export const ms = (value) => fmt(value, 3)
export const int = (value) => fmt(value, 1)
export const plural = (n, word, words = `${word}s`) => `${n} ${n === 1 ? word : words}`

export function table(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}
