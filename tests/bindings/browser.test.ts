// The React, Vue and Svelte bindings in Chromium: one small app per framework
// (tests/{react,vue,svelte}/fixture, with the same markup), built with Vite's JS API as an app
// ships, served from loopback and talking to the real token server. One scenario runs on each.
import { resolve } from 'node:path'
import { svelte } from '@sveltejs/vite-plugin-svelte'
import react from '@vitejs/plugin-react'
import vue from '@vitejs/plugin-vue'
import type { Browser, Page } from 'playwright-core'
import type { PluginOption } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestAuthServer, type TestAuthServer } from '../../src/testing/index.js'
import { launchChromium } from '../browser/chromium.js'
import type { FileServer } from '../browser/pageServer.js'
import { buildVitePage } from '../browser/vitePage.js'

const FRAMEWORKS: { name: string; plugins: () => PluginOption[] }[] = [
  { name: 'react', plugins: () => [react()] },
  { name: 'vue', plugins: () => [vue()] },
  { name: 'svelte', plugins: () => [svelte({ configFile: false })] },
]

let authServer: TestAuthServer
let browser: Browser

beforeAll(async () => {
  authServer = await createTestAuthServer()
  browser = await launchChromium()
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await authServer?.close()
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

describe.each(FRAMEWORKS)('auth-machine/$name in Chromium', ({ name, plugins }) => {
  let app: FileServer

  beforeAll(async () => {
    app = await buildVitePage(resolve(import.meta.dirname, `../${name}/fixture`), plugins())
  }, 120_000)

  afterAll(async () => {
    await app?.close()
  })

  it('renders the session through a refresh, updating selectors only on their value', async () => {
    const page = await browser.newPage()
    const errors: string[] = []
    page.on('pageerror', (error) => errors.push(error.message))
    // The framework's own warnings and errors count; the 401s the scenario provokes do not.
    page.on('console', (message) => {
      const text = message.text()
      if (text.startsWith('Failed to load resource')) return
      if (message.type() === 'error' || message.type() === 'warning') errors.push(text)
    })
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
    const refreshesBefore = authServer.counters.refreshCalls
    try {
      await page.goto(`${app.url}/?server=${encodeURIComponent(authServer.url)}`)
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
      // Queue changes did not update the generation component.
      expect(Number(await text(page, 'generation-renders'))).toBe(generationRenders)

      gate.release()
      await shows(page, 'result', 'ok,ok,ok,ok,ok')
      await shows(page, 'status', 'authenticated')
      await shows(page, 'generation', '2')
      await shows(page, 'queue', '0')
      // The refresh landing is one update of each.
      expect(Number(await text(page, 'generation-renders'))).toBe(generationRenders + 1)
      expect(Number(await text(page, 'status-renders'))).toBe(statusRenders + 1)
      expect(authServer.counters.refreshCalls - refreshesBefore).toBe(1)

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

  it('follows a refresh made in another tab with one update', async () => {
    const context = await browser.newContext()
    const errors: string[] = []
    const open = async () => {
      const page = await context.newPage()
      page.on('pageerror', (error) => errors.push(error.message))
      await page.goto(`${app.url}/?server=${encodeURIComponent(authServer.url)}`)
      await shows(page, 'status', 'loggedOut')
      return page
    }
    try {
      const [first, second] = [await open(), await open()]
      await first.getByRole('button', { name: 'Sign in' }).click()
      await shows(first, 'status', 'authenticated')
      // The other tab takes the session it heard of.
      await shows(second, 'status', 'authenticated')
      const generation = Number(await text(second, 'generation'))
      const renders = Number(await text(second, 'generation-renders'))

      const refreshesBefore = authServer.counters.refreshCalls
      authServer.expireAccessTokens()
      await first.getByRole('button', { name: 'Fetch' }).click()
      await shows(first, 'result', 'ok,ok,ok,ok,ok')
      await shows(second, 'generation', String(generation + 1))
      expect(Number(await text(second, 'generation-renders'))).toBe(renders + 1)
      expect(await text(second, 'status')).toBe('authenticated')
      expect(authServer.counters.refreshCalls - refreshesBefore).toBe(1)

      // And the second tab's requests use the first tab's token: no refresh of its own.
      await second.getByRole('button', { name: 'Fetch' }).click()
      await shows(second, 'result', 'ok,ok,ok,ok,ok')
      expect(authServer.counters.refreshCalls - refreshesBefore).toBe(1)
      expect(errors).toEqual([])
    } finally {
      await context.close()
    }
  }, 90_000)
})
