/**
 * Renders the app icon (`build/icon.svg`) to the PNGs electron-builder packages:
 * `build/icon.png` (1024×1024; electron-builder derives the Windows .ico and the macOS .icns from
 * it) and `build/icons/<n>x<n>.png` (the Linux icon set). The PNGs are committed; run this after
 * changing the SVG: `npx tsx scripts/make-icons.ts`.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const BUILD = fileURLToPath(new URL('../build/', import.meta.url));
/** Linux icon sizes (hicolor theme). */
export const LINUX_ICON_SIZES = [16, 32, 48, 64, 128, 256, 512] as const;

/** Writes every icon PNG from the SVG. */
export async function makeIcons(buildDir: string = BUILD): Promise<string[]> {
  const svg = await readFile(join(buildDir, 'icon.svg'));
  const written: string[] = [];
  const render = async (size: number, file: string) => {
    await sharp(svg, { density: Math.max(72, Math.ceil((72 * size) / 1024)) }).resize(size, size).png({ compressionLevel: 9 }).toFile(file);
    written.push(file);
  };
  await render(1024, join(buildDir, 'icon.png'));
  await mkdir(join(buildDir, 'icons'), { recursive: true });
  for (const size of LINUX_ICON_SIZES) await render(size, join(buildDir, 'icons', `${size}x${size}.png`));
  return written;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  makeIcons().then(
    (files) => console.log(files.map((f) => `  ${f}`).join('\n')),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
