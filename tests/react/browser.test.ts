// The React bindings in Chromium: a small app (tests/react/fixture) built with Vite's JS API,
// served from loopback, talking to the real token server.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { extname, join, resolve, sep } from 'node:path'
import react from '@vitejs/plugin-react'
import type { Browser, Page } from 'playwright-core'
import { build } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestAuthServer, type TestAuthServer } from '../../src/testing/index.js'
import { launchChromium } from '../browser/chromium.js'

const fixture = resolve(import.meta.dirname, 'fixture')
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
}

let outDir: string
let pages: Server
let pagesUrl: string
let authServer: TestAuthServer
let browser: Browser

beforeAll(async () => {
  outDir = await mkdtemp(join(tmpdir(), 'auth-machine-react-'))
  await build({
    root: fixture,
    configFile: false,
    logLevel: 'warn',
    plugins: [react()],
    build: { outDir, emptyOutDir: true, chunkSizeWarningLimit: 4096 },
  })
  pages = createServer(async (req, res) => {
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
  await new Promise<void>((ready) => pages.listen(0, '127.0.0.1', ready))
  pagesUrl = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`
  authServer = await createTestAuthServer()
  browser = await launchChromium()
}, 120_000)

afterAll(async () => {
  await browser?.close()
  await authServer?.close()
  if (pages) {
    pages.closeAllConnections()
    await new Promise<void>((done) => pages.close(() => done()))
  }
  if (outDir) await rm(outDir, { recursive: true, force: true })
})

async function text(page: Page, testId: string): Promise<string | null> {
  return page.getByTestId(testId).textContent()
}

async function shows(page: Page, testId: string, value: string): Promise<void> {
  await page.waitForFunction(
    ([id, expected]) => document.querySelector(`[data-testid="${id}"]`)?.textContent === expected,
    [testId, value] as const,
  )
}

describe('auth-machine/react in Chromium', () => {
  it('renders the session through a refresh, re-rendering selectors only on their value', async () => {
    const page = await browser.newPage()
    const errors: string[] = []
    page.on('pageerror', (error) => errors.push(error.message))
    const tokens = new Set<string>()
    const pending: Promise<void>[] = []
    page.on('response', (response) => {
      if (!/\/auth\/(login|refresh)$/.test(response.url()) || !response.ok()) return
      pending.push(
        response.json().then((body: Record<string, unknown>) => {
          for (const value of [body.accessToken, body.refreshToken]) {
            if (typeof value === 'string') tokens.add(value)
          }
        }),
      )
    })
    try {
      await page.goto(`${pagesUrl}/?server=${encodeURIComponent(authServer.url)}`)
      await shows(page, 'status', 'loggedOut')
      expect(await text(page, 'signed-in')).toBe('false')

      await page.getByRole('button', { name: 'Sign in' }).click()
      await shows(page, 'status', 'authenticated')
      await shows(page, 'generation', '1')
      expect(await text(page, 'signed-in')).toBe('true')
      const generationRenders = Number(await text(page, 'generation-renders'))

      // Five requests meet the expired token; the refresh is held, so all five queue up.
      const gate = authServer.hold('/auth/refresh')
      authServer.expireAccessTokens()
      await page.getByRole('button', { name: 'Fetch' }).click()
      await gate.untilWaiting(1)
      await shows(page, 'status', 'refreshing')
      await shows(page, 'queue', '5')
      expect(await text(page, 'signed-in')).toBe('true')
      expect(await text(page, 'refreshing')).toBe('true')
      const statusRenders = Number(await text(page, 'status-renders'))
      // Queue changes did not re-render the generation component.
      expect(Number(await text(page, 'generation-renders'))).toBe(generationRenders)

      gate.release()
      await shows(page, 'result', 'ok,ok,ok,ok,ok')
      await shows(page, 'status', 'authenticated')
      await shows(page, 'generation', '2')
      await shows(page, 'queue', '0')
      expect(Number(await text(page, 'generation-renders'))).toBe(generationRenders + 1)
      expect(Number(await text(page, 'status-renders'))).toBe(statusRenders + 1)
      expect(authServer.counters.refreshCalls).toBe(1)

      await page.getByRole('button', { name: 'Has token' }).click()
      await shows(page, 'has-token', 'true')

      // The server revokes the session: the next refresh is refused and the app hears of it.
      authServer.revokeSessions()
      await page.getByRole('button', { name: 'Fetch' }).click()
      await shows(page, 'status', 'expired')
      await shows(page, 'expired-events', '1')
      // Typed errors survive the production bundle: `instanceof AuthError`, then the code.
      await shows(page, 'result', Array(5).fill('SESSION_EXPIRED').join(','))
      expect(await text(page, 'signed-in')).toBe('false')
      expect(await text(page, 'error')).toBe('SESSION_EXPIRED')

      await page.getByRole('button', { name: 'Sign in' }).click()
      await shows(page, 'status', 'authenticated')
      await page.getByRole('button', { name: 'Log out' }).click()
      await shows(page, 'status', 'loggedOut')
      await page.getByRole('button', { name: 'Has token' }).click()
      await shows(page, 'has-token', 'false')

      await Promise.all(pending)
      expect(tokens.size).toBe(6)
      const html = await page.evaluate(() => document.documentElement.outerHTML)
      for (const token of tokens) expect(html).not.toContain(token)
      expect(errors).toEqual([])
    } finally {
      await page.close()
    }
  }, 90_000)
})
