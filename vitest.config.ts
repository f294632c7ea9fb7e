import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // A PostgreSQL server for the PostgreSQL store's tests (test/global-setup.ts).
    globalSetup: ["test/global-setup.ts"],
  },
});
