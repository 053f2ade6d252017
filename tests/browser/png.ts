// Just enough PNG to compare screenshots: the size from the header, and the pixels of the
// 8-bit, non-interlaced RGB and RGBA images Chromium writes (colour types 2 and 6, every
// filter of the PNG spec), decoded with node:zlib. Colour is kept: a recoloured state has the
// luminance of the old colour often enough.
import { inflateSync } from 'node:zlib'

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

export interface Image {
  width: number
  height: number
  /** Red, green and blue 0–255 per pixel, row by row (alpha dropped: screenshots are opaque). */
  rgb: Uint8Array
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

/** Decodes `png` to RGB; other bit depths, palettes, grey and interlacing are refused. */
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
  if (channels === 3) return { width, height, rgb: new Uint8Array(pixels) }
  const rgb = new Uint8Array(width * height * 3)
  for (let i = 0, at = 0; i < rgb.length; i += 3, at += 4) {
    rgb[i] = pixels[at] as number
    rgb[i + 1] = pixels[at + 1] as number
    rgb[i + 2] = pixels[at + 2] as number
  }
  return { width, height, rgb }
}

/**
 * The share of tiles ({@link tileDifference}) from which two screenshots of the page differ.
 * Measured at 1440×900 (20,340 tiles): the page against its committed screenshot, run after run,
 * differs in 1 to 3 tiles (the clock, the port: 0.015%); the active state alone recoloured, in
 * about 62 (0.3%); an empty page or a chart laid out anew in far more.
 */
export const MAX_TILE_DIFFERENCE = 0.001

/**
 * The share of `block`×`block` tiles in which the mean of any colour channel (red, green or
 * blue) differs by more than `tolerance` between two images of one size. Per channel, a change
 * of hue counts even where the luminance stays (blue #2f6fed to red #d0302a). Averaging over a
 * tile forgives font anti-aliasing, and a glyph that changed (a clock's digit) moved a tile's
 * mean by 25 at most in the runs measured; a recoloured area moves it by 100 or more, and a
 * new layout touches most tiles.
 */
export function tileDifference(a: Image, b: Image, block = 8, tolerance = 16): number {
  if (a.width !== b.width || a.height !== b.height) return 1
  const { width, height } = a
  const columns = Math.ceil(width / block)
  const rows = Math.ceil(height / block)
  // Per tile and channel, the sum of differences, accumulated row by row.
  const sums = new Float64Array(columns * 3)
  let differing = 0
  for (let row = 0; row < rows; row += 1) {
    sums.fill(0)
    const bottom = Math.min(height, (row + 1) * block)
    for (let y = row * block; y < bottom; y += 1) {
      for (let x = 0, at = y * width * 3; x < width; x += 1, at += 3) {
        const tile = Math.floor(x / block) * 3
        sums[tile] = (sums[tile] as number) + (a.rgb[at] as number) - (b.rgb[at] as number)
        sums[tile + 1] =
          (sums[tile + 1] as number) + (a.rgb[at + 1] as number) - (b.rgb[at + 1] as number)
        sums[tile + 2] =
          (sums[tile + 2] as number) + (a.rgb[at + 2] as number) - (b.rgb[at + 2] as number)
      }
    }
    for (let column = 0; column < columns; column += 1) {
      const count =
        (bottom - row * block) * (Math.min(width, (column + 1) * block) - column * block)
      const limit = tolerance * count
      const tile = column * 3
      if (
        Math.abs(sums[tile] as number) > limit ||
        Math.abs(sums[tile + 1] as number) > limit ||
        Math.abs(sums[tile + 2] as number) > limit
      ) {
        differing += 1
      }
    }
  }
  return differing / (columns * rows)
}
