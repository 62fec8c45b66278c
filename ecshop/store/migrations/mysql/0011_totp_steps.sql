-- ecshop schema v11 (MySQL/MariaDB): the time step of the last TOTP code an admin
-- account logged in with; a code of that step or an earlier one is refused (ecshop.admins).
ALTER TABLE admin_users ADD COLUMN totp_last_step BIGINT NULL;
