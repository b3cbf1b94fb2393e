/**
 * The part of highlight.js's core that `src-shared/highlight.ts` uses. Its own declarations pull in
 * the DOM library (`/// <reference lib="dom" />`), which would let main-process code use browser
 * globals unchecked; `#highlight-core` (package.json "imports") gives TypeScript these types instead
 * while bundlers load `highlight.js/lib/core` itself.
 */
declare const hljs: {
  registerLanguage(name: string, language: (hljs: unknown) => unknown): void;
  getLanguage(name: string): object | undefined;
  highlight(code: string, options: { language: string; ignoreIllegals?: boolean }): { value: string };
};
export default hljs;
