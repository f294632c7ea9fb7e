// The commands, each loaded when it runs (cli.ts calls these): `validate` never loads sharp,
// SQLite or undici, so its peak RSS is node's and the manifest's (about 65 MB, against 95 with
// every command's modules loaded).
const lazy =
  <F extends (...args: never[]) => Promise<number>>(load: () => Promise<Record<string, unknown>>, name: string) =>
  async (...args: Parameters<F>): Promise<number> =>
    ((await load())[name] as F)(...args);
export const runCommand = lazy<typeof import("./run.js").runCommand>(() => import("./run.js"), "runCommand");
export const statusCommand = lazy<typeof import("./status.js").statusCommand>(() => import("./status.js"), "statusCommand");
export const validateCommand = lazy<typeof import("./validate.js").validateCommand>(() => import("./validate.js"), "validateCommand");
export const rebuildCommand = lazy<typeof import("./rebuild.js").rebuildCommand>(() => import("./rebuild.js"), "rebuildCommand");
export const reportCommand = lazy<typeof import("./report.js").reportCommand>(() => import("./report.js"), "reportCommand");
export const exportCommand = lazy<typeof import("./export.js").exportCommand>(() => import("./export.js"), "exportCommand");
export const reviewCommand = lazy<typeof import("./review.js").reviewCommand>(() => import("./review.js"), "reviewCommand");
export const simCommand = lazy<typeof import("./sim.js").simCommand>(() => import("./sim.js"), "simCommand");
export const migrateCommand = lazy<typeof import("./migrate.js").migrateCommand>(() => import("./migrate.js"), "migrateCommand");
export const planCommand = lazy<typeof import("./plan.js").planCommand>(() => import("./plan.js"), "planCommand");
export const verifyCommand = lazy<typeof import("./verify.js").verifyCommand>(() => import("./verify.js"), "verifyCommand");
