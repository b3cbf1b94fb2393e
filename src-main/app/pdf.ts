/**
 * Prints export HTML to PDF with the browser engine: a hidden, sandboxed window with JavaScript
 * off loads the (self-contained, CSP-locked) HTML from a data: URL, prints it, and is destroyed.
 */
import { BrowserWindow } from 'electron';

/** `PrintToPdf` for the exporter. */
export async function printHtmlToPdf(html: string): Promise<Uint8Array> {
  const win = new BrowserWindow({
    show: false,
    webPreferences: { sandbox: true, contextIsolation: true, nodeIntegration: false, javascript: false, webSecurity: true, images: true },
  });
  try {
    await win.loadURL(`data:text/html;charset=utf-8;base64,${Buffer.from(html, 'utf8').toString('base64')}`);
    const pdf = await win.webContents.printToPDF({ printBackground: true, pageSize: 'A4' });
    return new Uint8Array(pdf);
  } finally {
    win.destroy();
  }
}
