"""The benchmark schema: 21 tables of a typical community/blog app.

What matters for the benchmarks is that it looks like a real app: foreign keys
(some self-referential, some cascading), composite keys, a few CHECKs and
indexes, columns of the usual types. Every name is explicit or comes from the
naming convention, so the hand-written migrations in ``migrations/versions``
build exactly these tables on SQLite, PostgreSQL and MariaDB
(``python benchmarks/schema/check.py`` proves it).

Types are chosen to reflect back as themselves on all three backends: sized
``String``s (MariaDB needs a length), no JSON (MariaDB stores it as LONGTEXT),
no Enum (PostgreSQL would need a type of its own), ``Integer`` keys (a SQLite
``BIGINT`` key is not a rowid).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _fk(target: str, ondelete: str | None = None) -> sa.ForeignKey:
    return sa.ForeignKey(target, ondelete=ondelete)


user_roles = sa.Table(
    "user_roles",
    db.metadata,
    sa.Column("user_id", sa.Integer, _fk("users.id", "CASCADE"), primary_key=True),
    sa.Column("role_id", sa.Integer, _fk("roles.id", "CASCADE"), primary_key=True),
    sa.Index("ix_user_roles_role_id", "role_id"),
)

post_tags = sa.Table(
    "post_tags",
    db.metadata,
    sa.Column("post_id", sa.Integer, _fk("posts.id", "CASCADE"), primary_key=True),
    sa.Column("tag_id", sa.Integer, _fk("tags.id", "CASCADE"), primary_key=True),
    sa.Index("ix_post_tags_tag_id", "tag_id"),
)


class Organization(db.Model):
    __tablename__ = "organizations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=_now)

    memberships: Mapped[list[Membership]] = relationship(back_populates="organization")


class User(db.Model):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    username: Mapped[str] = mapped_column(sa.String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=_now)
    # Added by the last migration (a batch ALTER).
    last_login_at: Mapped[dt.datetime | None]

    roles: Mapped[list[Role]] = relationship(secondary=user_roles, back_populates="users")
    profile: Mapped[Profile | None] = relationship(back_populates="user")
    posts: Mapped[list[Post]] = relationship(back_populates="author", foreign_keys="Post.author_id")
    settings: Mapped[list[UserSetting]] = relationship(back_populates="user")
    memberships: Mapped[list[Membership]] = relationship(back_populates="user")


class Role(db.Model):
    __tablename__ = "roles"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50), unique=True)
    description: Mapped[str | None] = mapped_column(sa.String(255))

    users: Mapped[list[User]] = relationship(secondary=user_roles, back_populates="roles")


class Profile(db.Model):
    __tablename__ = "profiles"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(_fk("users.id", "CASCADE"), unique=True)
    display_name: Mapped[str | None] = mapped_column(sa.String(100))
    bio: Mapped[str | None] = mapped_column(sa.Text)
    avatar_url: Mapped[str | None] = mapped_column(sa.String(500))
    birth_date: Mapped[dt.date | None]

    user: Mapped[User] = relationship(back_populates="profile")


class UserSetting(db.Model):
    __tablename__ = "user_settings"
    __table_args__ = (sa.UniqueConstraint("user_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(_fk("users.id", "CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(100))
    value: Mapped[str | None] = mapped_column(sa.Text)

    user: Mapped[User] = relationship(back_populates="settings")


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "organization_id"),
        sa.Index("ix_memberships_organization_id", "organization_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(_fk("users.id", "CASCADE"))
    organization_id: Mapped[int] = mapped_column(_fk("organizations.id", "CASCADE"))
    role: Mapped[str] = mapped_column(sa.String(20), default="member")
    joined_at: Mapped[dt.datetime] = mapped_column(default=_now)

    user: Mapped[User] = relationship(back_populates="memberships")
    organization: Mapped[Organization] = relationship(back_populates="memberships")


class Category(db.Model):
    __tablename__ = "categories"
    __table_args__ = (sa.CheckConstraint("position >= 0", name="position_positive"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(_fk("categories.id", "SET NULL"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    slug: Mapped[str] = mapped_column(sa.String(100), unique=True)
    position: Mapped[int] = mapped_column(default=0)

    parent: Mapped[Category | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Category]] = relationship(back_populates="parent")


class Post(db.Model):
    __tablename__ = "posts"
    __table_args__ = (
        sa.CheckConstraint("status IN ('draft', 'published', 'archived')", name="status_valid"),
        sa.CheckConstraint("view_count >= 0", name="view_count_positive"),
        sa.Index("ix_posts_author_id_created_at", "author_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(_fk("users.id"))
    category_id: Mapped[int | None] = mapped_column(_fk("categories.id", "SET NULL"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    slug: Mapped[str] = mapped_column(sa.String(200), unique=True)
    body: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(20), default="draft", index=True)
    published_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=_now)
    updated_at: Mapped[dt.datetime | None]
    # Added by the last migration, with its CHECK.
    view_count: Mapped[int] = mapped_column(default=0)

    author: Mapped[User] = relationship(back_populates="posts", foreign_keys=[author_id])
    category: Mapped[Category | None] = relationship()
    tags: Mapped[list[Tag]] = relationship(secondary=post_tags, back_populates="posts")
    comments: Mapped[list[Comment]] = relationship(back_populates="post")
    revisions: Mapped[list[PostRevision]] = relationship(back_populates="post")


class Tag(db.Model):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50), unique=True)

    posts: Mapped[list[Post]] = relationship(secondary=post_tags, back_populates="tags")


class PostRevision(db.Model):
    __tablename__ = "post_revisions"
    __table_args__ = (sa.UniqueConstraint("post_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(_fk("posts.id", "CASCADE"))
    editor_id: Mapped[int | None] = mapped_column(_fk("users.id", "SET NULL"), index=True)
    version: Mapped[int]
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=_now)

    post: Mapped[Post] = relationship(back_populates="revisions")


class Comment(db.Model):
    __tablename__ = "comments"
    __table_args__ = (sa.Index("ix_comments_post_id_created_at", "post_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(_fk("posts.id", "CASCADE"))
    author_id: Mapped[int] = mapped_column(_fk("users.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(_fk("comments.id", "CASCADE"), index=True)
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=_now)

    post: Mapped[Post] = relationship(back_populates="comments")
    author: Mapped[User] = relationship()
    parent: Mapped[Comment | None] = relationship(remote_side=[id], back_populates="replies")
    replies: Mapped[list[Comment]] = relationship(back_populates="parent")


class Follow(db.Model):
    __tablename__ = "follows"
    __table_args__ = (
        sa.CheckConstraint("follower_id <> followed_id", name="not_self"),
        sa.Index("ix_follows_followed_id", "followed_id"),
    )
    follower_id: Mapped[int] = mapped_column(_fk("users.id", "CASCADE"), primary_key=True)
    followed_id: Mapped[int] = mapped_column(_fk("users.id", "CASCADE"), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=_now)


class Like(db.Model):
    __tablename__ = "likes"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "post_id"),
        sa.Index("ix_likes_post_id", "post_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(_fk("users.id", "CASCADE"))
    post_id: Mapped[int] = mapped_column(_fk("posts.id", "CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(default=_now)


class Bookmark(db.Model):
    __tablename__ = "bookmarks"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "post_id"),
        sa.Index("ix_bookmarks_post_id", "post_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(_fk("users.id", "CASCADE"))
    post_id: Mapped[int] = mapped_column(_fk("posts.id", "CASCADE"))
    note: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=_now)


class Attachment(db.Model):
    __tablename__ = "attachments"
    __table_args__ = (sa.CheckConstraint("size_bytes >= 0", name="size_positive"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(_fk("posts.id", "CASCADE"), index=True)
    uploader_id: Mapped[int | None] = mapped_column(_fk("users.id", "SET NULL"), index=True)
    filename: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size_bytes: Mapped[int]
    created_at: Mapped[dt.datetime] = mapped_column(default=_now)


class Notification(db.Model):
    __tablename__ = "notifications"
    __table_args__ = (sa.Index("ix_notifications_user_id_read_at", "user_id", "read_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(_fk("users.id", "CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(50))
    payload: Mapped[str | None] = mapped_column(sa.Text)
    read_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=_now)


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (sa.Index("ix_messages_recipient_id_sent_at", "recipient_id", "sent_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    sender_id: Mapped[int] = mapped_column(_fk("users.id", "CASCADE"), index=True)
    recipient_id: Mapped[int] = mapped_column(_fk("users.id", "CASCADE"))
    subject: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    sent_at: Mapped[dt.datetime] = mapped_column(default=_now)
    read_at: Mapped[dt.datetime | None]


class ApiToken(db.Model):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(_fk("users.id", "CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=_now)
    expires_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]


class AuditLog(db.Model):
    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_target_type_target_id", "target_type", "target_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(_fk("users.id", "SET NULL"), index=True)
    action: Mapped[str] = mapped_column(sa.String(50))
    target_type: Mapped[str] = mapped_column(sa.String(50))
    target_id: Mapped[int | None]
    details: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=_now, index=True)
