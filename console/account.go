package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/sanigate/sanigate/cases"
)

type accountData struct {
	page
	Msg, Err string
}

func (c *Console) accountPage(w http.ResponseWriter, r *http.Request, q *request) {
	d := accountData{page: c.base(q, "account", "account")}
	if r.URL.Query().Get("saved") != "" {
		d.Msg = d.T("saved")
	}
	c.render(w, http.StatusOK, "account", &d)
}

func (c *Console) changePassword(w http.ResponseWriter, r *http.Request, q *request) {
	err := c.svc.SetPassword(r.Context(), q.sess.User.ID, r.PostFormValue("old"), r.PostFormValue("new"), q.token)
	if err != nil {
		d := accountData{page: c.base(q, "account", "account")}
		status := http.StatusBadRequest
		switch {
		case errors.Is(err, cases.ErrBadLogin):
			d.Err = d.T("err.login")
			status = http.StatusForbidden
		case errors.Is(err, cases.ErrBadRequest):
			d.Err = err.Error()
		default:
			c.fail(w, q, err)
			return
		}
		c.render(w, status, "account", &d)
		return
	}
	c.log.Info("console password changed", "user", q.sess.User.Name)
	http.Redirect(w, r, "/account?saved=1", http.StatusSeeOther)
}

func (c *Console) changeLang(w http.ResponseWriter, r *http.Request, q *request) {
	if err := c.svc.SetUserLang(r.Context(), q.sess.User.ID, r.PostFormValue("lang")); err != nil {
		c.fail(w, q, err)
		return
	}
	back := "/"
	if ref := r.Header.Get("Referer"); ref != "" {
		if i := strings.Index(ref, "://"); i >= 0 {
			if j := strings.IndexByte(ref[i+3:], '/'); j >= 0 {
				back = localPath(ref[i+3+j:])
			}
		}
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

type usersData struct {
	page
	Users []cases.User
	Units []cases.UnitConfig
	Msg   string
	Err   string
	Form  cases.User
}

func (c *Console) usersPage(w http.ResponseWriter, r *http.Request, q *request) {
	if !q.sess.User.Admin {
		c.fail(w, q, cases.ErrForbidden)
		return
	}
	d := usersData{page: c.base(q, "users", "users"), Units: c.svc.Units()}
	if n := r.URL.Query().Get("added"); n != "" {
		d.Msg = d.T("saved") + ": " + n
	}
	c.renderUsers(w, r, q, http.StatusOK, &d)
}

func (c *Console) renderUsers(w http.ResponseWriter, r *http.Request, q *request, status int, d *usersData) {
	var err error
	if d.Users, err = c.svc.Users(r.Context()); err != nil {
		c.fail(w, q, err)
		return
	}
	c.render(w, status, "users", d)
}

func (c *Console) addUser(w http.ResponseWriter, r *http.Request, q *request) {
	if !q.sess.User.Admin {
		c.fail(w, q, cases.ErrForbidden)
		return
	}
	u := cases.User{Name: strings.TrimSpace(r.PostFormValue("name")), Role: r.PostFormValue("role"),
		District: strings.TrimSpace(r.PostFormValue("district")), Unit: r.PostFormValue("unit"),
		Lang: r.PostFormValue("lang"), Admin: r.PostFormValue("admin") == "on"}
	added, err := c.svc.AddUser(r.Context(), u, r.PostFormValue("password"))
	if err != nil {
		if !errors.Is(err, cases.ErrBadRequest) && !errors.Is(err, cases.ErrConflict) {
			c.fail(w, q, err)
			return
		}
		d := usersData{page: c.base(q, "users", "users"), Units: c.svc.Units(), Err: err.Error(), Form: u}
		c.renderUsers(w, r, q, http.StatusBadRequest, &d)
		return
	}
	c.log.Info("console user added", "user", added.Name, "role", added.Role, "by", q.sess.User.Name)
	http.Redirect(w, r, "/admin/users?added="+url.QueryEscape(added.Name), http.StatusSeeOther)
}
