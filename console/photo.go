package console

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
)

// photoTypes are the image types accepted, by their sniffed content type.
var photoTypes = map[string]string{"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}

// savePhoto stores the form's photo, if any, under PhotoDir/<case>/ with a
// random name and the extension of its sniffed type; the browser's file
// name and declared type are ignored. It returns the stored name.
func (c *Console) savePhoto(r *http.Request, caseID int64) (string, error) {
	if r.MultipartForm == nil || len(r.MultipartForm.File["photo"]) == 0 {
		return "", nil
	}
	fh := r.MultipartForm.File["photo"][0]
	if fh.Size == 0 {
		return "", nil
	}
	if fh.Size > maxPhotoBytes {
		return "", fmt.Errorf("%d bytes is more than %d", fh.Size, maxPhotoBytes)
	}
	f, err := fh.Open()
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", err
	}
	ext, ok := photoTypes[http.DetectContentType(head[:n])]
	if !ok {
		return "", fmt.Errorf("content is %s", http.DetectContentType(head[:n]))
	}
	dir := filepath.Join(c.opt.PhotoDir, strconv.FormatInt(caseID, 10))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	name := randomString() + ext
	out, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(out, io.MultiReader(bytes.NewReader(head[:n]), io.LimitReader(f, maxPhotoBytes)))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(out.Name())
		return "", err
	}
	return name, nil
}

func (c *Console) removePhoto(caseID int64, name string) {
	if name == "" {
		return
	}
	_ = os.Remove(filepath.Join(c.opt.PhotoDir, strconv.FormatInt(caseID, 10), name))
}

// photo serves a stored photo to who may see its case.
func (c *Console) photo(w http.ResponseWriter, r *http.Request, q *request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	name := r.PathValue("name")
	m := photoRef.FindStringSubmatch("[photo:" + name + "]")
	if err != nil || id <= 0 || m == nil || m[1] != name {
		http.NotFound(w, r)
		return
	}
	if _, err := c.svc.Get(r.Context(), q.who, id); err != nil {
		c.fail(w, q, err)
		return
	}
	ctype := map[string]string{".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}[filepath.Ext(name)]
	f, err := os.Open(filepath.Join(c.opt.PhotoDir, strconv.FormatInt(id, 10), name))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", "inline")
	http.ServeContent(w, r, "", st.ModTime(), f)
}
