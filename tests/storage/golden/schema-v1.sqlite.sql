CREATE TABLE flow_versions (
        flow_id TEXT NOT NULL,
        version TEXT NOT NULL,
        definition TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (flow_id, version)
    );
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        flow_id TEXT NOT NULL,
        flow_version TEXT NOT NULL,
        platform TEXT NOT NULL,
        user_id TEXT NOT NULL,
        chat_id TEXT,
        user_name TEXT,
        locale TEXT NOT NULL,
        context TEXT NOT NULL,
        triggered_by TEXT NOT NULL,
        status TEXT NOT NULL,
        state TEXT NOT NULL,
        version INTEGER NOT NULL,
        idempotency_key TEXT UNIQUE,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        send_at TEXT,
        sent_at TEXT,
        expires_at TEXT,
        completed_at TEXT,
        reminded INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        prompted INTEGER,
        prompt_message_id TEXT
    );
    CREATE INDEX sessions_addressee ON sessions (platform, user_id, status);
    CREATE INDEX sessions_flow ON sessions (flow_id, created_at);
    CREATE TABLE answers (
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        question_id TEXT NOT NULL,
        question_index INTEGER NOT NULL,
        metric TEXT NOT NULL,
        value INTEGER,
        option TEXT,
        text TEXT,
        skipped INTEGER NOT NULL,
        scale_min INTEGER,
        scale_max INTEGER,
        answered_at TEXT NOT NULL,
        PRIMARY KEY (session_id, question_id)
    );
    CREATE INDEX answers_time ON answers (answered_at);
    CREATE TABLE processed_events (
        event_id TEXT PRIMARY KEY,
        processed_at TEXT NOT NULL
    );
    CREATE TABLE invites (
        token TEXT PRIMARY KEY,
        flow_id TEXT NOT NULL,
        context TEXT NOT NULL,
        created_at TEXT NOT NULL,
        used_at TEXT
    );
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        session_id TEXT NOT NULL,
        run_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        leased_until TEXT,
        last_error TEXT,
        UNIQUE (kind, session_id)
    );
    CREATE INDEX jobs_due ON jobs (status, run_at)
