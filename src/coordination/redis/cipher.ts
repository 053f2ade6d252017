import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { AuthError } from '../../errors.js'

/** Seals and opens the record's data; `context` binds a ciphertext to its key, version and kind. */
export interface Cipher {
  seal(plain: string, context: string): string
  /** `undefined` when the data was not sealed with this secret (or was tampered with). */
  open(sealed: string, context: string): string | undefined
}

const FORMAT = 'v1'

/**
 * AES-256-GCM under a key derived from `secret` with HKDF-SHA-256, so that a passphrase-like
 * secret still yields a uniform key. A fresh 96-bit IV per message; the tag authenticates
 * the data together with `context`.
 */
export function createCipher(secret: string | Uint8Array): Cipher {
  const material = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret)
  if (material.length < 32) {
    throw new AuthError(
      `redisCoordinator: \`secret\` must be at least 32 bytes (got ${material.length}).`,
      'INVALID_OPTIONS',
    )
  }
  const key = Buffer.from(
    hkdfSync('sha256', material, Buffer.alloc(0), 'auth-machine redis record', 32),
  )
  return {
    seal(plain, context) {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      cipher.setAAD(Buffer.from(context, 'utf8'))
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
      const parts = [iv, body, cipher.getAuthTag()].map((b) => b.toString('base64url'))
      return [FORMAT, ...parts].join('.')
    },
    open(sealed, context) {
      const [format, iv, body, tag] = sealed.split('.')
      if (format !== FORMAT || !iv || body === undefined || !tag) return undefined
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
        decipher.setAAD(Buffer.from(context, 'utf8'))
        decipher.setAuthTag(Buffer.from(tag, 'base64url'))
        const plain = Buffer.concat([
          decipher.update(Buffer.from(body, 'base64url')),
          decipher.final(),
        ])
        return plain.toString('utf8')
      } catch {
        return undefined
      }
    },
  }
}
