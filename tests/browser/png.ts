// Just enough PNG to compare screenshots: the size from the header, and the pixels of the
// 8-bit, non-interlaced RGB and RGBA images Chromium writes, decoded with node:zlib.
import { inflateSync } from 'node:zlib'

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

export interface Image {
  width: number
  height: number
  /** Luminance 0–255 per pixel, row by row. */
  luminance: Float32Array
}

/** Width and height from the IHDR chunk; throws when `png` is not a PNG. */
export function pngSize(png: Buffer): { width: number; height: number } {
  if (!png.subarray(0, 8).equals(SIGNATURE) || png.toString('latin1', 12, 16) !== 'IHDR') {
    throw new Error('not a PNG')
  }
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) }
}

function paeth(left: number, up: number, upLeft: number): number {
  const p = left + up - upLeft
  const [a, b, c] = [Math.abs(p - left), Math.abs(p - up), Math.abs(p - upLeft)]
  return a <= b && a <= c ? left : b <= c ? up : upLeft
}

/** Decodes `png` to luminance; other bit depths, palettes and interlacing are refused. */
export function decodePng(png: Buffer): Image {
  const { width, height } = pngSize(png)
  const [depth, colour, , , interlace] = png.subarray(24, 29)
  const channels = colour === 6 ? 4 : colour === 2 ? 3 : 0
  if (depth !== 8 || channels === 0 || interlace !== 0) {
    throw new Error(
      `unsupported PNG (depth ${depth}, colour type ${colour}, interlace ${interlace})`,
    )
  }
  const data: Buffer[] = []
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at)
    const type = png.toString('latin1', at + 4, at + 8)
    if (type === 'IDAT') data.push(png.subarray(at + 8, at + 8 + length))
    at += 12 + length
  }
  const raw = inflateSync(Buffer.concat(data))
  const stride = width * channels
  const pixels = Buffer.alloc(stride * height)
  for (let y = 0; y < height; y += 1) {
    const filter = raw[y * (stride + 1)]
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1))
    const row = y * stride
    for (let x = 0; x < stride; x += 1) {
      const left = x >= channels ? (pixels[row + x - channels] as number) : 0
      const up = y > 0 ? (pixels[row - stride + x] as number) : 0
      const upLeft = y > 0 && x >= channels ? (pixels[row - stride + x - channels] as number) : 0
      const value = line[x] as number
      const predicted =
        filter === 1
          ? left
          : filter === 2
            ? up
            : filter === 3
              ? Math.floor((left + up) / 2)
              : filter === 4
                ? paeth(left, up, upLeft)
                : 0
      pixels[row + x] = (value + predicted) & 0xff
    }
  }
  const luminance = new Float32Array(width * height)
  for (let i = 0; i < width * height; i += 1) {
    const at = i * channels
    luminance[i] =
      0.2126 * (pixels[at] as number) +
      0.7152 * (pixels[at + 1] as number) +
      0.0722 * (pixels[at + 2] as number)
  }
  return { width, height, luminance }
}

/**
 * The share of `block`×`block` tiles whose mean luminance differs by more than `tolerance`
 * between two images of one size. Averaging over tiles forgives font anti-aliasing; text that
 * changed (a clock, a port) touches a few tiles; a different layout touches most of them.
 */
export function tileDifference(a: Image, b: Image, block = 8, tolerance = 12): number {
  if (a.width !== b.width || a.height !== b.height) return 1
  const columns = Math.ceil(a.width / block)
  const rows = Math.ceil(a.height / block)
  let differing = 0
  for (let row = 0; row < rows; row += 1) {
    for (let column = 0; column < columns; column += 1) {
      let sum = 0
      let count = 0
      for (let y = row * block; y < Math.min(a.height, (row + 1) * block); y += 1) {
        for (let x = column * block; x < Math.min(a.width, (column + 1) * block); x += 1) {
          const i = y * a.width + x
          sum += (a.luminance[i] as number) - (b.luminance[i] as number)
          count += 1
        }
      }
      if (Math.abs(sum / count) > tolerance) differing += 1
    }
  }
  return differing / (columns * rows)
}
