/** highlight.js language definitions (functions of the core; see highlight-core.d.ts for why not its own types). */
declare module 'highlight.js/lib/languages/*' {
  const language: (hljs: unknown) => unknown;
  export default language;
}
